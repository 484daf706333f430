//! The command line: `ex_messenger server ...` and `ex_messenger client ...`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The port both subcommands use by default, so two terminals on one machine chat with no
/// configuration (next to Erlang's epmd, 4369).
pub const DEFAULT_PORT: u16 = 4370;

/// A supervised, distributed chat.
#[derive(Debug, Parser)]
#[command(name = "ex_messenger", version, about)]
pub struct Cli {
    /// Run the chat server, or a client.
    #[command(subcommand)]
    pub mode: Mode,
}

/// What to run.
#[derive(Debug, Subcommand)]
pub enum Mode {
    /// Run the chat server.
    Server(ServerArgs),
    /// Join a chat server as a user.
    Client(ClientArgs),
    /// Load test: N client processes in one room, each sending M messages; prints
    /// delivered messages per second and latency percentiles.
    Bench(BenchArgs),
    /// One load client (started by `bench`).
    #[command(hide = true)]
    BenchClient(BenchClientArgs),
    /// Reliability check: a server and N client processes saying numbered lines (with
    /// `--chaos`: clients killed, frozen, servers crashed); prints accepted, delivered,
    /// lost, duplicated and out-of-order lines, and the server's memory over time.
    Soak(SoakArgs),
    /// One soak client (started by `soak`).
    #[command(hide = true)]
    SoakClient(SoakClientArgs),
}

/// `ex_messenger soak`.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Client processes.
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    /// How long to run.
    #[arg(long, default_value_t = 2.0)]
    pub minutes: f64,
    /// Also kill and replace clients, freeze one past the liveness timeout, crash the
    /// message server and the room, and restart the whole server once.
    #[arg(long)]
    pub chaos: bool,
    /// Lines per second each client says, on average (a mixed pace with bursts).
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Keep each process's log (its stderr, filtered by `RUST_LOG`) in this directory,
    /// as `server-N.log` and `<nick>.log`, to find out why a check failed.
    #[arg(long)]
    pub logs: Option<std::path::PathBuf>,
}

/// `ex_messenger soak-client` (internal; the cookie comes from `$OTP_COOKIE`).
#[derive(Debug, Args)]
pub struct SoakClientArgs {
    /// The server, HOST:PORT.
    #[arg(long)]
    pub server: String,
    /// This client's nick.
    #[arg(long)]
    pub nick: String,
    /// Lines per second, on average.
    #[arg(long)]
    pub rate: f64,
}

/// `ex_messenger bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Client processes (each one client node).
    #[arg(short = 'n', long, default_value_t = 10)]
    pub clients: usize,
    /// Messages each client sends.
    #[arg(short, long, default_value_t = 100)]
    pub messages: u64,
    /// Messages per second each client sends (0: as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Bytes per message.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Use this server instead of starting one.
    #[arg(short, long)]
    pub server: Option<String>,
    /// The cookie of `--server` (default: a fresh one for the bench's own server).
    #[arg(long, requires = "server")]
    pub cookie: Option<String>,
    /// The flood limit of the bench's own server, messages per second per user.
    #[arg(long, default_value_t = 1e6)]
    pub rate_limit: f64,
    /// Run once per count given, on a cluster of that many servers of its own, with the
    /// same clients spread over them; a run on one server comes first, as the baseline
    /// (`--servers 3`: one server, then three).
    #[arg(long, value_delimiter = ',', default_value = "1", conflicts_with = "server",
          value_parser = clap::value_parser!(u64).range(1..=16))]
    pub servers: Vec<u64>,
    /// Run each server count twice: without the observer, then with it on and one page
    /// open (the bench keeps the page's feed open and asks for `message_server`'s status
    /// after each snapshot, as a browser showing it does).
    #[arg(long, conflicts_with = "server")]
    pub observer: bool,
}

/// `ex_messenger bench-client` (internal; the cookie comes from `$OTP_COOKIE`).
#[derive(Debug, Args)]
pub struct BenchClientArgs {
    /// The server, HOST:PORT.
    #[arg(long)]
    pub server: String,
    /// This client's nick.
    #[arg(long)]
    pub nick: String,
    /// Messages to send.
    #[arg(long)]
    pub messages: u64,
    /// Messages per second (0: as fast as possible).
    #[arg(long)]
    pub rate: f64,
    /// Bytes per message.
    #[arg(long)]
    pub size: usize,
    /// Clients in the run, self included: how many lines to expect.
    #[arg(long)]
    pub peers: usize,
}

/// `ex_messenger server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Where to accept client nodes.
    #[arg(long, default_value_t = SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)))]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub cookie: CookieArgs,
    /// Requests per second one user may make (lines, /pm, /join, ...), sustained (bursts
    /// of twice that pass); beyond it each is refused, and the user is told so.
    #[arg(long, default_value_t = crate::throttle::DEFAULT_RATE)]
    pub rate_limit: f64,
    /// Join the cluster of the server at HOST:PORT (several: a comma-separated list, or
    /// the flag again): servers with the same cookie and cluster key form one chat.
    #[arg(long, value_name = "HOST:PORT", value_delimiter = ',')]
    pub join: Vec<String>,
    /// The file holding the secret only servers know (default ~/.ex_messenger.cluster,
    /// created on first use): servers of one cluster need the same one; it signs session
    /// tokens and what servers tell each other.
    #[arg(long, value_name = "FILE")]
    pub cluster_key_file: Option<PathBuf>,
    /// Serve a live page of the server's supervision trees, links and restarts at this
    /// address (default 127.0.0.1:4380: loopback only); actions on it need the access
    /// token printed at start.
    #[arg(long, value_name = "HOST:PORT", num_args = 0..=1,
          default_missing_value = "127.0.0.1:4380")]
    pub observer: Option<SocketAddr>,
    /// Load the supervision tree from this file instead of the built-in
    /// supervisor-specs/ex_messenger_server.json.
    #[arg(long, value_name = "FILE")]
    pub tree: Option<PathBuf>,
    /// For tests: read `crash message_server` or `crash room <name>` lines on stdin and
    /// crash that GenServer (only in builds with the `fault-hook` feature).
    #[cfg(feature = "fault-hook")]
    #[arg(long)]
    pub fault_hook: bool,
    /// A client node silent this long (frozen, or its network gone) is declared down and
    /// its user removed.
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    pub liveness_timeout: u64,
    /// Bytes of room traffic a user may fall behind (not reading: a stopped terminal, a
    /// slow link) before the server disconnects them; half of it is tolerated for 10 s.
    /// What the server holds for one slow reader stays within this bound.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BACKLOG,
          value_parser = clap::value_parser!(u64).range(MIN_MAX_BACKLOG..))]
    pub max_backlog: u64,
}

/// The default of `server --max-backlog`: 1 MiB, about 5,000 lines of 150 bytes.
pub const DEFAULT_MAX_BACKLOG: u64 = 1024 * 1024;

/// The smallest `--max-backlog`: readers report what they read every 64 KiB, so a
/// smaller bound would count a reader that keeps up as behind.
pub const MIN_MAX_BACKLOG: u64 = 2 * crate::client::inbox::REPORT_EVERY;

/// `ex_messenger client`.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The server, as HOST:PORT (prompted for if missing).
    #[arg(short, long)]
    pub server: Option<String>,
    /// Your nickname: 1 to 32 characters, no spaces (prompted for if missing).
    #[arg(short, long)]
    pub nick: Option<String>,
    #[command(flatten)]
    pub cookie: CookieArgs,
    /// A server silent this long (frozen, or the network gone) is declared down.
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    pub liveness_timeout: u64,
    /// After losing the server, stop retrying after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub give_up_after: u64,
    /// Load the supervision tree from this file instead of the built-in
    /// supervisor-specs/ex_messenger_client.json.
    #[arg(long, value_name = "FILE")]
    pub tree: Option<PathBuf>,
}

/// Where the node cookie comes from: a flag, else `$OTP_COOKIE`, else the cookie file.
#[derive(Debug, Args)]
pub struct CookieArgs {
    /// The shared secret (visible to other local users in the process list: prefer a file).
    #[arg(long, conflicts_with = "cookie_file")]
    pub cookie: Option<String>,
    /// A file holding the shared secret (default ~/.otp.cookie, created on first use).
    #[arg(long)]
    pub cookie_file: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn both_sides_default_to_the_same_port_on_this_machine() {
        let cli = Cli::try_parse_from(["ex_messenger", "server"]).unwrap();
        let Mode::Server(server) = cli.mode else {
            panic!("server expected")
        };
        assert_eq!(
            server.listen,
            SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT))
        );
        assert!(server.cookie.cookie.is_none() && server.cookie.cookie_file.is_none());

        let cli = Cli::try_parse_from(["ex_messenger", "client"]).unwrap();
        let Mode::Client(client) = cli.mode else {
            panic!("client expected")
        };
        assert!(client.server.is_none() && client.nick.is_none());
    }

    #[test]
    fn short_and_long_flags() {
        let cli = Cli::try_parse_from([
            "ex_messenger",
            "client",
            "-s",
            "10.0.0.1:4370",
            "--nick",
            "alice",
            "--cookie-file",
            "/tmp/c",
        ])
        .unwrap();
        let Mode::Client(client) = cli.mode else {
            panic!("client expected")
        };
        assert_eq!(client.server.as_deref(), Some("10.0.0.1:4370"));
        assert_eq!(client.nick.as_deref(), Some("alice"));
        assert_eq!(client.cookie.cookie_file, Some(PathBuf::from("/tmp/c")));
    }

    #[test]
    fn a_cookie_and_a_cookie_file_together_are_refused() {
        let error = Cli::try_parse_from([
            "ex_messenger",
            "server",
            "--cookie",
            "x",
            "--cookie-file",
            "f",
        ])
        .unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn a_cluster_is_joined_by_one_or_more_servers_and_benched_by_counts() {
        let cli = Cli::try_parse_from([
            "ex_messenger",
            "server",
            "--join",
            "127.0.0.1:4370,127.0.0.1:4371",
            "--join",
            "127.0.0.1:4372",
        ])
        .unwrap();
        let Mode::Server(server) = cli.mode else {
            panic!("server expected")
        };
        assert_eq!(
            server.join,
            ["127.0.0.1:4370", "127.0.0.1:4371", "127.0.0.1:4372"]
        );
        let bench = |args: &[&str]| {
            let all = [&["ex_messenger", "bench"], args].concat();
            Cli::try_parse_from(all).map(|cli| match cli.mode {
                Mode::Bench(bench) => bench.servers,
                _ => panic!("bench expected"),
            })
        };
        assert_eq!(bench(&[]).unwrap(), [1]);
        assert_eq!(bench(&["--servers", "1,3"]).unwrap(), [1, 3]);
        assert!(bench(&["--servers", "0"]).is_err());
        assert!(bench(&["--servers", "3", "--server", "h:1"]).is_err());
    }

    #[test]
    fn help_describes_every_flag() {
        Cli::command().debug_assert();
        let mut command = Cli::command();
        let client = command
            .find_subcommand_mut("client")
            .unwrap()
            .render_long_help()
            .to_string();
        for flag in ["--server", "--nick", "--cookie", "--cookie-file"] {
            assert!(client.contains(flag), "{flag} missing from:\n{client}");
        }
    }
}
