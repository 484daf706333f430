//! `ex_messenger`: the distributed chat built on the `otp` framework. See `--help`.

use std::process::ExitCode;

use clap::Parser;
use ex_messenger::cli::{Cli, Mode};

/// Returns freed memory to the system (see Cargo.toml).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read at its start: background threads purge freed pages, after
/// one second unused (its default is ten), straight back to the system (no "muzzy" stage,
/// which would keep them counted in RSS on Linux until memory runs short).
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A client is one user's traffic: one thread serves it with less waking across threads
    // (and a hundred load clients on two cores contend less). The server uses every core.
    let runtime = match cli.mode {
        Mode::Server(_) | Mode::Bench(_) | Mode::Soak(_) => {
            tokio::runtime::Builder::new_multi_thread()
        }
        Mode::Client(_) | Mode::BenchClient(_) | Mode::SoakClient(_) => {
            tokio::runtime::Builder::new_current_thread()
        }
    }
    .enable_all()
    .build();
    match runtime {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(error) => {
            eprintln!("ex_messenger: cannot start the async runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> ExitCode {
    // Logs go to stderr; RUST_LOG overrides. A client's terminal belongs to the chat, so
    // it logs errors only; a server tells its operator who comes and goes.
    let default_filter = match cli.mode {
        Mode::Client(_)
        | Mode::Bench(_)
        | Mode::BenchClient(_)
        | Mode::Soak(_)
        | Mode::SoakClient(_) => "error",
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
        Mode::Bench(args) => ex_messenger::bench::run(args)
            .await
            .map(|()| ExitCode::SUCCESS),
        Mode::BenchClient(args) => ex_messenger::bench::client(args)
            .await
            .map(|()| ExitCode::SUCCESS),
        Mode::Soak(args) => ex_messenger::soak::run(args)
            .await
            .map(|()| ExitCode::SUCCESS),
        Mode::SoakClient(args) => ex_messenger::soak::client::run(args)
            .await
            .map(|()| ExitCode::SUCCESS),
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
