//! `ex_messenger`: the distributed chat built on the `otp` framework. See `--help`.

use std::process::ExitCode;

use clap::Parser;
use ex_messenger::cli::{Cli, Mode};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr; RUST_LOG overrides. A client's terminal belongs to the chat, so
    // it logs errors only; a server tells its operator who comes and goes.
    let default_filter = match cli.mode {
        Mode::Client(_) => "error",
        _ => "info,ractor=warn,ractor_cluster=error",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let outcome = match cli.mode {
        Mode::Server(args) => ex_messenger::server::run(args)
            .await
            .map(|()| ExitCode::SUCCESS),
        Mode::Client(args) => ex_messenger::client::run(args).await,
    };
    let code = match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("ex_messenger: {error:#}");
            ExitCode::FAILURE
        }
    };
    // Exit now: a runtime shutting down waits for its blocked stdin reader, which waits for
    // a line that may never come.
    use std::io::Write;
    let _ = std::io::stdout().flush();
    std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 1 })
}
