//! The interactive client on a real terminal (a pseudo-terminal from util-linux `script`):
//! an incoming line is printed above the prompt, and what the user was typing is drawn
//! again after it, not garbled.

use std::process::Stdio;

use otp_tests::chat::{binary, Chat};
use otp_tests::PATIENCE;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::mpsc;

const COOKIE: &str = "tty-test-cookie";

/// Raw terminal output, read until it contains what is wanted.
struct Screen {
    chunks: mpsc::UnboundedReceiver<Vec<u8>>,
    seen: String,
}

impl Screen {
    /// Waits until the output since the last call contains `wanted`; returns that part.
    async fn expect(&mut self, wanted: &str) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(at) = self.seen.find(wanted) {
                let upto = at + wanted.len();
                let part = self.seen[..upto].to_owned();
                self.seen.drain(..upto);
                return part;
            }
            match tokio::time::timeout_at(deadline, self.chunks.recv()).await {
                Ok(Some(chunk)) => self.seen.push_str(&String::from_utf8_lossy(&chunk)),
                _ => panic!("{wanted:?} never appeared; screen: {:?}", self.seen),
            }
        }
    }
}

/// Keys typed in one go.
async fn type_text(keyboard: &mut tokio::process::ChildStdin, keys: &str) {
    keyboard.write_all(keys.as_bytes()).await.unwrap();
    keyboard.flush().await.unwrap();
}

#[tokio::test]
async fn incoming_lines_print_above_the_prompt_and_keep_what_is_being_typed() {
    let (_server, address) = Chat::server(COOKIE, &[]).await;
    let mut other = Chat::joined(&address, "other", COOKIE).await;

    let client = format!(
        "{} client -s {address} -n tty --cookie {COOKIE}",
        binary().display()
    );
    let mut terminal = Command::new("script")
        .args(["-qfec", &client, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("util-linux `script` runs the client on a pseudo-terminal");
    let mut keyboard = terminal.stdin.take().unwrap();
    let mut stdout = terminal.stdout.take().unwrap();
    let (sender, chunks) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buffer).await {
            if n == 0 || sender.send(buffer[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut screen = Screen {
        chunks,
        seen: String::new(),
    };

    screen.expect("**Type /help for options**").await;
    screen.expect("tty> ").await;
    other.expect("**tty has joined**").await;

    // Half a line typed, then a line arrives: it is printed, then the prompt and the
    // half-typed text are drawn again.
    // Typed faster than the editor reads (one read returns them all): rustyline before 19
    // drew only the first key until something else happened.
    type_text(&mut keyboard, "half a li").await;
    screen.expect("half a li").await;
    other.send("interrupting").await;
    screen.expect("other: interrupting").await;
    screen.expect("tty> half a li").await;

    // Finishing the line sends it whole.
    type_text(&mut keyboard, "ne\r").await;
    other.expect("tty: half a line").await;

    type_text(&mut keyboard, "/quit\r").await;
    other.expect("**tty has left**").await;
    let status = tokio::time::timeout(PATIENCE, terminal.wait())
        .await
        .expect("the client exits")
        .unwrap();
    assert!(status.success());
}
