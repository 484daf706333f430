//! The load tool (not yet).
