//! The line editor's logic, free of I/O: keys in, bytes for the screen out. The terminal
//! feeds it keys and writes what it returns, so every behaviour here is tested without a
//! terminal.
//!
//! Two rules shape it:
//! - *Nothing typed is lost.* Keys are handled one by one as they arrive, and a line ended
//!   by Enter is queued at once, so three lines typed faster than the screen redraws are
//!   three lines.
//! - *Work per key does not grow with the line.* Typing at the end of the line (what a fast
//!   typist or a paste does) appends and echoes one character; only edits in the middle, an
//!   incoming line or a resize redraw the line, and the line is bounded by
//!   [`MAX_MESSAGE_BYTES`]: what is typed past that is counted, not kept, and the line is
//!   refused when Enter comes.

use std::collections::VecDeque;
use std::fmt::Write as _;

use unicode_width::UnicodeWidthChar;

use crate::MAX_MESSAGE_BYTES;

/// How many sent lines Up and Down recall.
const HISTORY: usize = 100;

/// A key (or paste) the editor acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Backspace,
    Delete,
    Left,
    Right,
    Home,
    End,
    /// Older history entry.
    Up,
    /// Newer history entry.
    Down,
    /// Ctrl-U: clear the line.
    KillLine,
    /// Ctrl-W: delete the word before the cursor.
    KillWord,
    /// Ctrl-L: draw the line again.
    Redraw,
    /// Ctrl-C: leave.
    Interrupt,
    /// Ctrl-D: leave on an empty line, else delete under the cursor.
    EndOfInput,
    /// The terminal is this many columns wide now.
    Resize(usize),
}

/// What a finished line turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Typed {
    /// A line, without its ending.
    Line(String),
    /// A line that cannot be sent, with the one-line reason to show.
    Refused(String),
    /// The user is done (Ctrl-D on an empty line, Ctrl-C, end of input).
    End,
}

/// The refusal for a line over the size limit, worded as the server words it.
pub fn too_long(bytes: usize) -> Typed {
    Typed::Refused(format!(
        "message too long ({bytes} bytes): the limit is {MAX_MESSAGE_BYTES} bytes; nothing was sent"
    ))
}

/// The line being edited and where it stands on the screen.
pub struct Editor {
    prompt: String,
    prompt_width: usize,
    /// The text typed so far, at most [`MAX_MESSAGE_BYTES`].
    line: String,
    /// Byte offset of the cursor in `line`.
    cursor: usize,
    /// Bytes typed past the limit: counted for the refusal, never stored or drawn, so a
    /// runaway line costs nothing per key.
    overflow: usize,
    /// Display width of `line`, kept up to date as keys come so that typing at the end
    /// never measures the line.
    line_width: usize,
    /// Terminal width in columns.
    columns: usize,
    /// Screen row of the cursor, counted from the prompt's first row: how far up a redraw
    /// must go.
    cursor_row: usize,
    /// Whether the prompt and line are on the screen now.
    shown: bool,
    /// Finished lines not yet read by the program, oldest first.
    finished: VecDeque<Typed>,
    history: VecDeque<String>,
    /// The history entry shown (Up/Down), counted from the newest; `None`: the user's own.
    recalled: Option<usize>,
}

impl Editor {
    /// An editor for a terminal `columns` wide.
    pub fn new(columns: usize) -> Self {
        Self {
            prompt: String::new(),
            prompt_width: 0,
            line: String::new(),
            cursor: 0,
            overflow: 0,
            line_width: 0,
            columns: columns.max(1),
            cursor_row: 0,
            shown: false,
            finished: VecDeque::new(),
            history: VecDeque::new(),
            recalled: None,
        }
    }

    /// The next finished line, if any.
    pub fn take_finished(&mut self) -> Option<Typed> {
        self.finished.pop_front()
    }

    /// Whether a finished line waits to be taken.
    pub fn has_finished(&self) -> bool {
        !self.finished.is_empty()
    }

    /// Shows `prompt` and the line typed so far, unless they are already shown.
    pub fn show(&mut self, prompt: &str, out: &mut String) {
        if self.shown && self.prompt == prompt {
            return;
        }
        self.clear(out);
        self.prompt = prompt.to_owned();
        self.prompt_width = width(prompt);
        self.draw(out);
    }

    /// Prints `lines` above the prompt, then draws the prompt and the line again.
    pub fn print_above<'a>(&mut self, lines: impl IntoIterator<Item = &'a str>, out: &mut String) {
        let shown = self.shown;
        self.clear(out);
        for line in lines {
            for part in line.split('\n') {
                out.push_str(part);
                out.push_str("\r\n");
            }
        }
        if shown {
            self.draw(out);
        }
    }

    /// Takes the screen back from the editor (the program is leaving): the prompt and the
    /// unfinished line are wiped.
    pub fn hide(&mut self, out: &mut String) {
        self.clear(out);
    }

    /// Acts on one key.
    pub fn key(&mut self, key: Key, out: &mut String) {
        match key {
            Key::Char(c) => self.insert(c, out),
            Key::Enter => self.enter(out),
            Key::Backspace => {
                if let Some(c) = self.line[..self.cursor].chars().next_back() {
                    self.cursor -= c.len_utf8();
                    self.line.remove(self.cursor);
                    self.edited(out);
                } else if self.overflow > 0 {
                    self.overflow -= 1;
                }
            }
            Key::Delete => self.delete_forward(out),
            Key::EndOfInput if self.line.is_empty() && self.overflow == 0 => self.end(out),
            Key::EndOfInput => self.delete_forward(out),
            Key::Interrupt => self.end(out),
            Key::Left => {
                if let Some(c) = self.line[..self.cursor].chars().next_back() {
                    self.cursor -= c.len_utf8();
                    self.place_cursor(out);
                }
            }
            Key::Right => {
                if let Some(c) = self.line[self.cursor..].chars().next() {
                    self.cursor += c.len_utf8();
                    self.place_cursor(out);
                }
            }
            Key::Home => {
                self.cursor = 0;
                self.place_cursor(out);
            }
            Key::End => {
                self.cursor = self.line.len();
                self.place_cursor(out);
            }
            Key::Up => self.recall(self.recalled.map_or(0, |r| r + 1), out),
            Key::Down => match self.recalled {
                Some(0) | None => {
                    self.recalled = None;
                    self.replace_line(String::new(), out);
                }
                Some(r) => self.recall(r - 1, out),
            },
            Key::KillLine => {
                self.overflow = 0;
                self.replace_line(String::new(), out);
            }
            Key::KillWord => {
                let before = &self.line[..self.cursor];
                let kept = before.trim_end();
                let start = kept.rfind(char::is_whitespace).map_or(0, |at| {
                    at + kept[at..].chars().next().map_or(1, char::len_utf8)
                });
                self.line.replace_range(start..self.cursor, "");
                self.cursor = start;
                self.edited(out);
            }
            Key::Redraw => {
                self.clear(out);
                self.draw(out);
            }
            Key::Resize(columns) => {
                // Where the old layout left the cursor is unknown once the terminal has
                // reflowed it: start afresh on the current row.
                self.columns = columns.max(1);
                if self.shown {
                    self.cursor_row = 0;
                    out.push_str("\r\x1b[J");
                    self.draw(out);
                }
            }
        }
    }

    /// Appends or inserts one character.
    fn insert(&mut self, c: char, out: &mut String) {
        if c.is_control() {
            return;
        }
        if self.overflow > 0 || self.line.len() + c.len_utf8() > MAX_MESSAGE_BYTES {
            self.overflow += c.len_utf8();
            return;
        }
        let at_end = self.cursor == self.line.len();
        self.line.insert(self.cursor, c);
        self.cursor += c.len_utf8();
        if at_end {
            // The common case, and the one that must stay cheap: echo the character.
            self.line_width += char_width(c);
            if self.shown {
                out.push(c);
                self.settle_at_end(out);
            }
        } else {
            self.edited(out);
        }
    }

    fn delete_forward(&mut self, out: &mut String) {
        if self.cursor < self.line.len() {
            self.line.remove(self.cursor);
            self.edited(out);
        }
    }

    fn enter(&mut self, out: &mut String) {
        let line = std::mem::take(&mut self.line);
        let overflow = std::mem::take(&mut self.overflow);
        self.cursor = 0;
        self.line_width = 0;
        self.recalled = None;
        if self.shown {
            // The finished line stays on the screen, as typed; the next prompt goes below
            // when the program asks for the next line.
            out.push_str("\r\n");
            self.shown = false;
            self.cursor_row = 0;
        }
        if overflow > 0 {
            self.finished.push_back(too_long(line.len() + overflow));
            return;
        }
        if !line.trim().is_empty() && self.history.front() != Some(&line) {
            self.history.push_front(line.clone());
            self.history.truncate(HISTORY);
        }
        self.finished.push_back(Typed::Line(line));
    }

    fn end(&mut self, out: &mut String) {
        self.clear(out);
        self.finished.push_back(Typed::End);
    }

    fn recall(&mut self, index: usize, out: &mut String) {
        if let Some(entry) = self.history.get(index).cloned() {
            self.recalled = Some(index);
            self.replace_line(entry, out);
        }
    }

    fn replace_line(&mut self, line: String, out: &mut String) {
        self.line = line;
        self.cursor = self.line.len();
        self.edited(out);
    }

    /// The line changed somewhere other than its end: measure and draw it again.
    fn edited(&mut self, out: &mut String) {
        self.line_width = width(&self.line);
        if self.shown {
            self.clear(out);
            self.draw(out);
        }
    }

    /// Wipes the prompt and line from the screen, leaving the cursor where the prompt began.
    fn clear(&mut self, out: &mut String) {
        if !self.shown {
            return;
        }
        if self.cursor_row > 0 {
            let _ = write!(out, "\x1b[{}A", self.cursor_row);
        }
        out.push_str("\r\x1b[J");
        self.cursor_row = 0;
        self.shown = false;
    }

    /// Draws the prompt and line from the cursor's row, and puts the cursor in place.
    fn draw(&mut self, out: &mut String) {
        out.push_str(&self.prompt);
        out.push_str(&self.line);
        self.shown = true;
        self.cursor_row = 0;
        self.settle_at_end(out);
        if self.cursor < self.line.len() {
            self.place_cursor(out);
        }
    }

    /// After writing up to the end of the line: where the terminal cursor is now. When the
    /// text fills its last row exactly, terminals leave the cursor pending on the last
    /// column; a space and a carriage return move it to the next row for certain.
    fn settle_at_end(&mut self, out: &mut String) {
        let end = self.prompt_width + self.line_width;
        if end > 0 && end.is_multiple_of(self.columns) && end / self.columns > self.cursor_row {
            out.push_str(" \r");
        }
        self.cursor_row = end / self.columns;
    }

    /// Moves the terminal cursor to the editing cursor (it is at the end of the line, or
    /// wherever the last move left it).
    fn place_cursor(&mut self, out: &mut String) {
        if !self.shown {
            return;
        }
        let at = self.prompt_width + width(&self.line[..self.cursor]);
        let (row, column) = (at / self.columns, at % self.columns);
        if row < self.cursor_row {
            let _ = write!(out, "\x1b[{}A", self.cursor_row - row);
        } else if row > self.cursor_row {
            let _ = write!(out, "\x1b[{}B", row - self.cursor_row);
        }
        out.push('\r');
        if column > 0 {
            let _ = write!(out, "\x1b[{column}C");
        }
        self.cursor_row = row;
    }
}

fn char_width(c: char) -> usize {
    c.width().unwrap_or(0)
}

fn width(text: &str) -> usize {
    text.chars().map(char_width).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(editor: &mut Editor, text: &str) -> String {
        let mut out = String::new();
        for c in text.chars() {
            let key = match c {
                '\r' | '\n' => Key::Enter,
                c => Key::Char(c),
            };
            editor.key(key, &mut out);
        }
        out
    }

    fn finished(editor: &mut Editor) -> Vec<Typed> {
        std::iter::from_fn(|| editor.take_finished()).collect()
    }

    fn line(text: &str) -> Typed {
        Typed::Line(text.to_owned())
    }

    #[test]
    fn lines_typed_at_once_are_each_finished_in_order() {
        let mut editor = Editor::new(80);
        editor.show("alice> ", &mut String::new());
        typed(&mut editor, "one1\rtwo2\rthree3\r");
        assert_eq!(
            finished(&mut editor),
            [line("one1"), line("two2"), line("three3")]
        );
    }

    #[test]
    fn a_line_over_the_limit_is_refused_and_the_next_one_still_goes() {
        let mut editor = Editor::new(80);
        editor.show("> ", &mut String::new());
        typed(&mut editor, &format!("{}\rfour\r", "x".repeat(5000)));
        assert_eq!(
            finished(&mut editor),
            [
                Typed::Refused(
                    "message too long (5000 bytes): the limit is 4096 bytes; nothing was sent"
                        .into()
                ),
                line("four")
            ]
        );
    }

    #[test]
    fn typing_at_the_end_echoes_one_character_however_long_the_line() {
        let mut editor = Editor::new(80);
        editor.show("> ", &mut String::new());
        // Every key of a line as long as the limit, and far past it, writes at most the
        // character and a wrap: nothing that grows with the line.
        let mut longest = 0;
        for i in 0..40_000 {
            let out = typed(&mut editor, if i % 2 == 0 { "a" } else { "é" });
            longest = longest.max(out.len());
        }
        assert!(
            longest <= " \r".len() + 'é'.len_utf8(),
            "{longest} bytes for one key"
        );
        typed(&mut editor, "\r");
        assert_eq!(
            finished(&mut editor),
            [Typed::Refused(
                "message too long (60000 bytes): the limit is 4096 bytes; nothing was sent".into()
            )]
        );
    }

    #[test]
    fn an_incoming_line_is_printed_above_and_the_half_typed_line_drawn_again() {
        let mut editor = Editor::new(80);
        editor.show("tty> ", &mut String::new());
        typed(&mut editor, "half a li");
        let mut out = String::new();
        editor.print_above(["other: hi"], &mut out);
        assert_eq!(out, "\r\x1b[Jother: hi\r\ntty> half a li");
        // With the cursor inside the line, it is put back there: 13 columns right.
        editor.key(Key::Left, &mut String::new());
        let mut out = String::new();
        editor.print_above(["x"], &mut out);
        assert!(out.ends_with("tty> half a li\r\x1b[13C"), "{out:?}");
    }

    #[test]
    fn a_wrapped_line_is_cleared_from_its_first_row() {
        let mut editor = Editor::new(10);
        editor.show("> ", &mut String::new());
        typed(&mut editor, "abcdefghijklmnopqrstu"); // 23 columns: three rows
        let mut out = String::new();
        editor.print_above(["news"], &mut out);
        assert!(out.starts_with("\x1b[2A\r\x1b[Jnews\r\n"), "{out:?}");
        typed(&mut editor, "\r");
        assert_eq!(finished(&mut editor), [line("abcdefghijklmnopqrstu")]);
    }

    #[test]
    fn editing_in_the_middle_backspace_and_words() {
        let mut editor = Editor::new(80);
        let mut out = String::new();
        editor.show("> ", &mut out);
        typed(&mut editor, "helo world");
        for key in [Key::Home, Key::Right, Key::Right, Key::Right] {
            editor.key(key, &mut out);
        }
        typed(&mut editor, "l");
        editor.key(Key::End, &mut out);
        editor.key(Key::KillWord, &mut out);
        typed(&mut editor, "there");
        editor.key(Key::Backspace, &mut out);
        typed(&mut editor, "e\r");
        assert_eq!(finished(&mut editor), [line("hello there")]);
    }

    #[test]
    fn history_recalls_sent_lines() {
        let mut editor = Editor::new(80);
        let mut out = String::new();
        editor.show("> ", &mut out);
        typed(&mut editor, "first\rsecond\r");
        finished(&mut editor);
        editor.show("> ", &mut out);
        editor.key(Key::Up, &mut out);
        editor.key(Key::Up, &mut out);
        editor.key(Key::Down, &mut out);
        typed(&mut editor, "!\r");
        assert_eq!(finished(&mut editor), [line("second!")]);
    }

    #[test]
    fn ctrl_d_ends_only_an_empty_line_and_ctrl_c_always() {
        let mut editor = Editor::new(80);
        let mut out = String::new();
        editor.show("> ", &mut out);
        typed(&mut editor, "ab");
        editor.key(Key::Home, &mut out);
        editor.key(Key::EndOfInput, &mut out);
        typed(&mut editor, "\r");
        assert_eq!(finished(&mut editor), [line("b")]);
        editor.key(Key::EndOfInput, &mut out);
        editor.key(Key::Interrupt, &mut out);
        assert_eq!(finished(&mut editor), [Typed::End, Typed::End]);
    }
}
