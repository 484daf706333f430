//! Shared helpers for the tests in `tests/tests/`.
