//! Driving real `ex_messenger` processes through stdin and stdout.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::PATIENCE;

/// The `ex_messenger` binary next to this test's directory. `cargo test --workspace`
/// builds it (for the command-line tests of its own package); `-p otp-tests` alone does not.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let binary = dir.join("ex_messenger");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo test --workspace` (or `cargo build -p ex_messenger`)",
        binary.display()
    );
    binary
}

/// The address in the server's first line, `ex_messenger server NAME listening on ADDR`.
pub fn listening_address(ready: &str) -> String {
    ready.rsplit(' ').next().expect("an address").to_owned()
}

/// One running `ex_messenger` process: its stdin, and its stdout line by line.
pub struct Chat {
    /// What the tests call it in failure messages.
    pub label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    /// Everything read so far, for failure messages.
    seen: Vec<String>,
}

impl Chat {
    /// Starts `ex_messenger <args>`.
    pub fn spawn(label: &str, args: &[&str]) -> Chat {
        let mut child = Command::new(binary())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Logs stay out of the transcript; CHAT_LOGS=1 shows them when debugging.
            .stderr(match std::env::var_os("CHAT_LOGS") {
                Some(_) => Stdio::inherit(),
                None => Stdio::null(),
            })
            .kill_on_drop(true)
            .spawn()
            .expect("start ex_messenger");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut stdout = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = stdout.next_line().await {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Chat {
            label: label.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// A server on an ephemeral port with the fault hook; returns it and its address.
    pub async fn server(cookie: &str, extra: &[&str]) -> (Chat, String) {
        let mut args = vec!["server", "--listen", "127.0.0.1:0", "--cookie", cookie];
        args.extend_from_slice(extra);
        Self::server_with(&args).await
    }

    /// A server with exactly these arguments; returns it and its address.
    pub async fn server_with(args: &[&str]) -> (Chat, String) {
        let mut server = Chat::spawn("server", args);
        let ready = server.expect("listening on").await;
        (server, listening_address(&ready))
    }

    /// A client that has joined the default room as `nick`.
    pub async fn joined(address: &str, nick: &str, cookie: &str) -> Chat {
        let mut client = Chat::client(address, nick, cookie);
        client.expect("**Type /help for options**").await;
        client
    }

    /// Two clients in the default room, `first` having seen `second` come in: the start
    /// of most chat scenarios.
    pub async fn pair(address: &str, first: &str, second: &str, cookie: &str) -> (Chat, Chat) {
        let mut one = Chat::joined(address, first, cookie).await;
        let two = Chat::joined(address, second, cookie).await;
        one.expect(&format!("**{second} has joined**")).await;
        (one, two)
    }

    /// A client starting to join (nothing awaited).
    pub fn client(address: &str, nick: &str, cookie: &str) -> Chat {
        Chat::spawn(
            nick,
            &["client", "-s", address, "-n", nick, "--cookie", cookie],
        )
    }

    /// Types a line.
    pub async fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes()).await;
    }

    /// Writes these bytes to its input, as they are.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(bytes).await.expect("write to ex_messenger");
        stdin.flush().await.expect("flush");
    }

    /// Closes stdin: end of input.
    pub fn close_input(&mut self) {
        self.stdin = None;
    }

    /// The next line, waiting at most [`PATIENCE`]; `None` at end of output.
    pub async fn next(&mut self) -> Option<String> {
        let line = tokio::time::timeout(PATIENCE, self.lines.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{}: no output for {PATIENCE:?}; saw {:#?}",
                    self.label, self.seen
                )
            })?;
        self.seen.push(line.clone());
        Some(line)
    }

    /// Reads until a line containing `wanted`; returns it. Fails after [`PATIENCE`] or at
    /// end of output, showing what was seen.
    pub async fn expect(&mut self, wanted: &str) -> String {
        self.expect_before(wanted, &[]).await
    }

    /// Like [`expect`](Self::expect), but fails if a line containing any of `forbidden`
    /// comes first.
    pub async fn expect_before(&mut self, wanted: &str, forbidden: &[&str]) -> String {
        loop {
            let Some(line) = self.next().await else {
                panic!(
                    "{}: output ended before {wanted:?}; saw {:#?}",
                    self.label, self.seen
                )
            };
            if let Some(bad) = forbidden.iter().find(|f| line.contains(*f)) {
                panic!(
                    "{}: {bad:?} came before {wanted:?}; saw {:#?}",
                    self.label, self.seen
                );
            }
            if line.contains(wanted) {
                return line;
            }
        }
    }

    /// Every line seen so far.
    pub fn transcript(&self) -> &[String] {
        &self.seen
    }

    /// Waits for the process to exit (at most [`PATIENCE`]).
    pub async fn exit_status(&mut self) -> ExitStatus {
        tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{}: did not exit; saw {:#?}", self.label, self.seen))
            .expect("wait")
    }

    /// SIGKILL.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Sends a signal by number (SIGTERM = 15, SIGSTOP = 19, SIGCONT = 18).
    pub fn signal(&self, signal: i32) {
        let pid = self.child.id().expect("running");
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
    }
}
