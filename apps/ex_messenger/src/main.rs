//! `ex_messenger`: the distributed chat built on the `otp` framework.
//!
//! The command line is in place (`--help` describes it); the server and client behind it
//! are not built yet, and the binary says so instead of pretending.

use clap::Parser;
use ex_messenger::cli::{Cli, Mode};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let what = match cli.mode {
        Mode::Server(_) => "server",
        Mode::Client(_) => "client",
    };
    eprintln!(
        "ex_messenger: the chat {what} is not built yet; the framework it runs on is in framework/"
    );
    std::process::ExitCode::from(2)
}
