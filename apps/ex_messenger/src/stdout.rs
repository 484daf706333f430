//! Lines for the person (or program) reading our standard output. Unlike `println!`, a
//! reader that went away (a closed pipe) does not panic the process: a server keeps serving
//! when whoever started it stops reading.

use std::fmt::Display;
use std::io::Write;

/// Writes one line and flushes; errors are ignored.
pub fn line(text: impl Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Writes text without a line end (a prompt) and flushes; errors are ignored.
pub fn prompt(text: impl Display) {
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{text}");
    let _ = out.flush();
}
