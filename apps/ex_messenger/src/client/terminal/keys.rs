//! Bytes from a terminal in raw mode, as keys: UTF-8 text, control keys, and the escape
//! sequences of arrows, Home, End and Delete (parsed by `anstyle-parse`, a VT parser).
//! Every byte is decoded, however many come in one read: a paste or keys typed ahead are
//! keys like any other.

use anstyle_parse::{Params, Parser, Perform};

use super::editor::Key;

/// Turns a terminal's input bytes into [`Key`]s; keeps a sequence split across two reads.
#[derive(Default)]
pub struct KeyDecoder {
    parser: Parser,
    keys: Collect,
}

#[derive(Default)]
struct Collect {
    keys: Vec<Key>,
    /// `ESC O` came: the next character names a key (SS3: `ESC O H` is Home).
    single_shift: bool,
}

impl KeyDecoder {
    /// The keys in `bytes` (and in what earlier calls left unfinished).
    pub fn decode(&mut self, bytes: &[u8]) -> Vec<Key> {
        for &byte in bytes {
            self.parser.advance(&mut self.keys, byte);
        }
        std::mem::take(&mut self.keys.keys)
    }
}

impl Perform for Collect {
    fn print(&mut self, c: char) {
        let key = if std::mem::take(&mut self.single_shift) {
            match c {
                'A' => Key::Up,
                'B' => Key::Down,
                'C' => Key::Right,
                'D' => Key::Left,
                'H' => Key::Home,
                'F' => Key::End,
                _ => return,
            }
        } else if c == '\x7f' {
            Key::Backspace
        } else {
            Key::Char(c)
        };
        self.keys.push(key);
    }

    fn execute(&mut self, byte: u8) {
        let key = match byte {
            b'\r' | b'\n' => Key::Enter,
            b'\t' => Key::Char(' '),
            0x08 => Key::Backspace,
            0x01 => Key::Home,
            0x05 => Key::End,
            0x02 => Key::Left,
            0x06 => Key::Right,
            0x10 => Key::Up,
            0x0e => Key::Down,
            0x15 => Key::KillLine,
            0x17 => Key::KillWord,
            0x0c => Key::Redraw,
            0x03 => Key::Interrupt,
            0x04 => Key::EndOfInput,
            _ => return,
        };
        self.keys.push(key);
    }

    fn csi_dispatch(&mut self, params: &Params, _intermediates: &[u8], _ignore: bool, action: u8) {
        let first = params.iter().next().and_then(|p| p.first().copied());
        let key = match (action, first) {
            (b'A', _) => Key::Up,
            (b'B', _) => Key::Down,
            (b'C', _) => Key::Right,
            (b'D', _) => Key::Left,
            (b'H', _) | (b'~', Some(1 | 7)) => Key::Home,
            (b'F', _) | (b'~', Some(4 | 8)) => Key::End,
            (b'~', Some(3)) => Key::Delete,
            _ => return,
        };
        self.keys.push(key);
    }

    fn esc_dispatch(&mut self, _intermediates: &[u8], _ignore: bool, byte: u8) {
        self.single_shift = byte == b'O';
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(text: &str) -> Vec<Key> {
        text.chars().map(Key::Char).collect()
    }

    #[test]
    fn text_and_enters_typed_at_once_are_all_keys() {
        let mut expected = chars("one1");
        expected.push(Key::Enter);
        expected.extend(chars("twö2"));
        expected.push(Key::Enter);
        assert_eq!(
            KeyDecoder::default().decode("one1\rtwö2\n".as_bytes()),
            expected
        );
    }

    #[test]
    fn sequences_and_characters_split_across_reads_are_kept() {
        let mut decoder = KeyDecoder::default();
        let bytes = "é\x1b[3~\x1bOH\x1b[D".as_bytes();
        let mut keys = Vec::new();
        for byte in bytes {
            keys.extend(decoder.decode(&[*byte]));
        }
        assert_eq!(keys, [Key::Char('é'), Key::Delete, Key::Home, Key::Left]);
    }

    #[test]
    fn control_keys() {
        let keys = KeyDecoder::default().decode(b"a\x7f\x08\x03\x04\x15\x17\t\x1b[A\x1b[1~\x1b[F");
        assert_eq!(
            keys,
            [
                Key::Char('a'),
                Key::Backspace,
                Key::Backspace,
                Key::Interrupt,
                Key::EndOfInput,
                Key::KillLine,
                Key::KillWord,
                Key::Char(' '),
                Key::Up,
                Key::Home,
                Key::End
            ]
        );
    }

    #[test]
    fn unknown_sequences_are_skipped_whole() {
        let keys = KeyDecoder::default().decode(b"\x1b[200~x\x1b]0;title\x07\x1b[15~y");
        assert_eq!(keys, chars("xy"));
    }
}
