//! The user's side of the screen. On a terminal: a line editor (rustyline) on its own
//! thread, and incoming lines printed above the prompt so typing is never garbled. Otherwise
//! (a pipe, a script, a test): plain lines in, plain lines out.

use std::io::IsTerminal;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, BufReader, Lines, Stdin};
use tokio::sync::{oneshot, Mutex};

/// Reads lines with a prompt and prints lines, whatever stdin and stdout are.
pub enum Terminal {
    /// stdin and stdout are a terminal.
    Editor {
        /// Prompts to read a line with; the editor thread answers each.
        requests: std::sync::mpsc::Sender<(String, oneshot::Sender<Option<String>>)>,
        /// Prints above the prompt; `None` if the terminal does not support it.
        printer: Option<Box<dyn rustyline::ExternalPrinter + Send>>,
    },
    /// Anything else. Shared with the task reading the next line.
    Plain(Arc<Mutex<Lines<BufReader<Stdin>>>>),
}

impl Terminal {
    /// The line editor when both ends are a terminal, plain lines otherwise.
    pub fn open() -> Self {
        if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
            if let Some(editor) = Self::editor() {
                return editor;
            }
        }
        Self::Plain(Arc::new(Mutex::new(
            BufReader::new(tokio::io::stdin()).lines(),
        )))
    }

    fn editor() -> Option<Self> {
        let mut editor = rustyline::DefaultEditor::new().ok()?;
        let printer = editor
            .create_external_printer()
            .ok()
            .map(|p| Box::new(p) as Box<dyn rustyline::ExternalPrinter + Send>);
        let (requests, incoming) =
            std::sync::mpsc::channel::<(String, oneshot::Sender<Option<String>>)>();
        std::thread::spawn(move || {
            while let Ok((prompt, answer)) = incoming.recv() {
                let line = editor.readline(&prompt).ok();
                if let Some(line) = line.as_deref().filter(|l| !l.trim().is_empty()) {
                    let _ = editor.add_history_entry(line);
                }
                let _ = answer.send(line);
            }
        });
        Some(Self::Editor { requests, printer })
    }

    /// One line (without its ending), after showing `prompt`; `None` at end of input
    /// (Ctrl-D, Ctrl-C in the editor, or a closed pipe).
    pub async fn read_line(&mut self, prompt: &str) -> Option<String> {
        self.next_line(prompt).await.ok().flatten()
    }

    /// Starts reading a line; the answer comes on the returned channel, so the terminal
    /// stays free to print meanwhile.
    pub fn next_line(&mut self, prompt: &str) -> oneshot::Receiver<Option<String>> {
        let (answer, line) = oneshot::channel();
        match self {
            Self::Editor { requests, .. } => {
                let _ = requests.send((prompt.to_owned(), answer));
            }
            Self::Plain(lines) => {
                if !prompt.is_empty() {
                    crate::stdout::prompt(prompt);
                }
                let lines = lines.clone();
                tokio::spawn(async move {
                    let line = lines.lock().await.next_line().await.ok().flatten();
                    let _ = answer.send(line);
                });
            }
        }
        line
    }

    /// Shows a line, above the prompt when editing.
    pub fn print(&mut self, line: &str) {
        match self {
            Self::Editor {
                printer: Some(printer),
                ..
            } => {
                if printer.print(format!("{line}\n")).is_err() {
                    crate::stdout::line(line);
                }
            }
            _ => crate::stdout::line(line),
        }
    }

    /// The prompt shown while chatting: the nick, as the original showed the node.
    pub fn chat_prompt(&self, nick: &str) -> String {
        match self {
            Self::Editor { .. } => format!("{nick}> "),
            Self::Plain(_) => String::new(),
        }
    }
}
