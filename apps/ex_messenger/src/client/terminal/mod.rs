//! The user's side of the screen. On a terminal: our line editor ([`editor`]) in raw mode
//! for the whole session, reading keys as they come and printing incoming lines above the
//! prompt on the same task, so nothing typed is dropped and a line printed is on the screen
//! before the program goes on. Otherwise (a pipe, a script, a test): plain lines in, plain
//! lines out.
//!
//! Either way a line that cannot be sent (over [`MAX_MESSAGE_BYTES`], or not UTF-8 text)
//! comes back as [`Typed::Refused`] with its one-line reason, and reading goes on.

mod editor;
mod keys;

use std::io::{IsTerminal, Write};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::sync::mpsc;

pub use editor::Typed;
use editor::{Editor, Key};
use keys::KeyDecoder;

use crate::MAX_MESSAGE_BYTES;

/// Lines read ahead of the chat on a pipe: enough to keep the reader busy, few enough that
/// a fast producer waits for the chat instead of filling memory.
const READ_AHEAD: usize = 64;

/// The width assumed when the terminal does not tell.
const DEFAULT_COLUMNS: usize = 80;

/// Keys decoded ahead of the editor, at most.
const KEYS_AHEAD: usize = 4096;

/// Keys handled before their echo is written: one write for a burst, a bounded delay.
const KEYS_PER_WRITE: usize = 256;

/// Reads lines with a prompt and prints lines, whatever stdin and stdout are.
pub enum Terminal {
    /// stdin and stdout are a terminal.
    Editor(Box<Tty>),
    /// Anything else.
    Plain(Plain),
}

/// The terminal in raw mode with our editor on it. Restores the terminal when dropped.
pub struct Tty {
    editor: Editor,
    /// Keys and resizes, decoded from every byte read by [`read_keys`].
    keys: mpsc::Receiver<Key>,
}

/// Lines from a pipe, read by a task of their own.
pub struct Plain {
    lines: mpsc::Receiver<Typed>,
    /// The prompt has been written for the line being read.
    prompted: bool,
}

impl Terminal {
    /// The line editor when both ends are a terminal, plain lines otherwise.
    pub fn open() -> Self {
        if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
            match Tty::open() {
                Ok(tty) => return Self::Editor(Box::new(tty)),
                Err(error) => tracing::warn!(%error, "no line editor; reading plain lines"),
            }
        }
        let (sender, lines) = mpsc::channel(READ_AHEAD);
        tokio::spawn(read_plain_lines(sender));
        Self::Plain(Plain {
            lines,
            prompted: false,
        })
    }

    /// The next line typed after `prompt`. Cancel-safe: a `select!` may drop it to print
    /// something and call it again, and nothing typed is lost.
    pub async fn read(&mut self, prompt: &str) -> Typed {
        match self {
            Self::Editor(tty) => tty.read(prompt).await,
            Self::Plain(plain) => {
                if !plain.prompted && !prompt.is_empty() {
                    crate::stdout::prompt(prompt);
                }
                plain.prompted = true;
                let typed = plain.lines.recv().await.unwrap_or(Typed::End);
                plain.prompted = false;
                typed
            }
        }
    }

    /// One line after `prompt`, for the questions asked before chatting; a refused line is
    /// explained and asked for again. `None` at end of input.
    pub async fn read_line(&mut self, prompt: &str) -> Option<String> {
        loop {
            match self.read(prompt).await {
                Typed::Line(line) => return Some(line),
                Typed::Refused(why) => self.print(&why),
                Typed::End => return None,
            }
        }
    }

    /// Shows a line, above the prompt when editing. It is on the screen when this returns.
    pub fn print(&mut self, line: &str) {
        self.print_all([line]);
    }

    /// Shows several lines at once (one redraw of the prompt for all of them).
    pub fn print_all<'a>(&mut self, lines: impl IntoIterator<Item = &'a str>) {
        match self {
            Self::Editor(tty) => {
                let mut out = String::new();
                tty.editor.print_above(lines, &mut out);
                write_screen(&out);
            }
            Self::Plain(_) => lines.into_iter().for_each(crate::stdout::line),
        }
    }

    /// The prompt shown while chatting: the nick, as the original showed the node.
    pub fn chat_prompt(&self, nick: &str) -> String {
        match self {
            Self::Editor(_) => format!("{nick}> "),
            Self::Plain(_) => String::new(),
        }
    }
}

impl Tty {
    fn open() -> std::io::Result<Self> {
        crossterm::terminal::enable_raw_mode()?;
        let (sender, keys) = mpsc::channel(KEYS_AHEAD);
        tokio::spawn(read_keys(sender));
        Ok(Self {
            editor: Editor::new(columns()),
            keys,
        })
    }

    async fn read(&mut self, prompt: &str) -> Typed {
        loop {
            if let Some(typed) = self.editor.take_finished() {
                return typed;
            }
            let mut out = String::new();
            self.editor.show(prompt, &mut out);
            write_screen(&out);
            // The only await: cancelling here loses nothing (keys wait in the channel).
            let Some(key) = self.keys.recv().await else {
                return Typed::End;
            };
            // Keys that came together (a paste, typeahead) are drawn with one write, up to
            // the end of a line: the keys after it belong to the next prompt, which the
            // program may change (`Server Name: `, then `Nickname: `).
            let mut out = String::new();
            self.editor.key(key, &mut out);
            for _ in 1..KEYS_PER_WRITE {
                if self.editor.has_finished() {
                    break;
                }
                let Ok(key) = self.keys.try_recv() else { break };
                self.editor.key(key, &mut out);
            }
            write_screen(&out);
        }
    }
}

impl Drop for Tty {
    fn drop(&mut self) {
        let mut out = String::new();
        self.editor.hide(&mut out);
        write_screen(&out);
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// The terminal's width in columns.
fn columns() -> usize {
    // A pseudo-terminal nobody sized (as under `script` from a pipe) says 0 columns.
    crossterm::terminal::size()
        .ok()
        .filter(|&(columns, _)| columns > 0)
        .map_or(DEFAULT_COLUMNS, |(columns, _)| columns.into())
}

/// Writes the editor's output; a terminal that went away is not an error worth dying of.
fn write_screen(out: &str) {
    if out.is_empty() {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}

/// Reads the terminal until end of input, decoding every byte into keys, and reports
/// resizes. A full channel makes it wait: keys typed ahead wait in the terminal, not in
/// memory here.
async fn read_keys(keys: mpsc::Sender<Key>) {
    let mut input = tokio::io::stdin();
    let mut decoder = KeyDecoder::default();
    let mut resized =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
    let mut buffer = vec![0u8; 4096];
    loop {
        let (decoded, ended) = tokio::select! {
            read = input.read(&mut buffer) => match read {
                // The terminal hung up: as Ctrl-C, whatever was half typed.
                Ok(0) | Err(_) => (vec![Key::Interrupt], true),
                Ok(n) => (decoder.decode(&buffer[..n]), false),
            },
            Some(()) = async { resized.as_mut()?.recv().await } => {
                (vec![Key::Resize(columns())], false)
            }
        };
        for key in decoded {
            if keys.send(key).await.is_err() {
                return;
            }
        }
        if ended {
            return;
        }
    }
}

/// Reads stdin line by line into `lines` until end of input. A line is kept only up to the
/// message limit (the rest is counted, not stored), so one endless line cannot fill memory;
/// a line over the limit or not valid UTF-8 is refused on its own and reading goes on.
async fn read_plain_lines(lines: mpsc::Sender<Typed>) {
    let mut input = BufReader::new(tokio::io::stdin());
    loop {
        let mut kept = Vec::new();
        let mut length = 0usize;
        let mut ended = false;
        loop {
            let chunk = match input.fill_buf().await {
                Ok(chunk) => chunk,
                Err(error) => {
                    tracing::warn!(%error, "cannot read standard input");
                    &[]
                }
            };
            if chunk.is_empty() {
                ended = true;
                break;
            }
            let newline = chunk.iter().position(|&b| b == b'\n');
            let part = &chunk[..newline.unwrap_or(chunk.len())];
            let room = (MAX_MESSAGE_BYTES + 1).saturating_sub(kept.len());
            kept.extend_from_slice(&part[..part.len().min(room)]);
            length += part.len();
            let consumed = newline.map_or(chunk.len(), |at| at + 1);
            input.consume(consumed);
            if newline.is_some() {
                break;
            }
        }
        if ended && length == 0 {
            let _ = lines.send(Typed::End).await;
            return;
        }
        if kept.last() == Some(&b'\r') && length <= MAX_MESSAGE_BYTES + 1 {
            kept.pop();
            length -= 1;
        }
        let typed = if length > MAX_MESSAGE_BYTES {
            editor::too_long(length)
        } else {
            match String::from_utf8(kept) {
                Ok(line) => Typed::Line(line),
                Err(_) => Typed::Refused(
                    "line refused: it is not valid UTF-8 text; nothing was sent".into(),
                ),
            }
        };
        if lines.send(typed).await.is_err() {
            return;
        }
        if ended {
            let _ = lines.send(Typed::End).await;
            return;
        }
    }
}
