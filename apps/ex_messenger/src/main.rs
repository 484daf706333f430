//! `ex_messenger`: the distributed chat built on the `otp` framework.
//!
//! The chat itself is not built yet (it builds on the framework's distribution layer);
//! this binary says so instead of pretending.

fn main() -> std::process::ExitCode {
    eprintln!("ex_messenger: the chat is not built yet; the framework it runs on is in framework/");
    std::process::ExitCode::from(2)
}
