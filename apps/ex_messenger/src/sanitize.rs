//! Text made safe for other people's terminals.
//!
//! A chat prints what strangers typed. Escape sequences could recolour or clear a screen,
//! move the cursor to forge lines, retitle the window, or (on some terminals) write files;
//! control characters could ring bells or erase text; text-direction overrides can make a
//! line read differently from what it is. [`clean`] removes all of them, whole, before a
//! message reaches anyone else.

/// Removes escape sequences (CSI, OSC, DCS and the like, whole), control characters (C0
/// and C1) and invisible or text-direction characters. Tabs become spaces; nothing else is
/// changed.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\t' => out.push(' '),
            '\u{1b}' => skip_escape(&mut chars),
            // C1 CSI, OSC, DCS, ... introducers: skip the sequence they start.
            '\u{9b}' => skip_until_final(&mut chars),
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            c if c.is_control() || is_invisible_or_directional(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Characters that change how text reads without being seen: zero-width characters,
/// bidirectional controls (the Arabic letter mark among them) and Unicode tag characters.
pub fn is_invisible_or_directional(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}' | '\u{feff}' | '\u{e0000}'..='\u{e007f}'
    )
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

/// After ESC: a CSI (`ESC [`), a string sequence (`ESC ]`, `ESC P`, `ESC X`, `ESC ^`,
/// `ESC _`), or a two-character escape.
fn skip_escape(chars: &mut Chars<'_>) {
    match chars.next() {
        Some('[') => skip_until_final(chars),
        Some(']' | 'P' | 'X' | '^' | '_') => skip_string(chars),
        // Intermediate bytes (e.g. `ESC ( B`): skip them and the final byte.
        Some(' '..='/') => {
            while chars.next_if(|c| (' '..='/').contains(c)).is_some() {}
            chars.next();
        }
        _ => {}
    }
}

/// A CSI sequence's parameters and intermediates, through its final byte (`@` to `~`).
fn skip_until_final(chars: &mut Chars<'_>) {
    for c in chars.by_ref() {
        if ('@'..='~').contains(&c) {
            return;
        }
    }
}

/// A string sequence, through its terminator: BEL, ST (`ESC \`) or C1 ST.
fn skip_string(chars: &mut Chars<'_>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                chars.next_if_eq(&'\\');
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_untouched() {
        for text in [
            "hello",
            "héllo wörld",
            "日本語 ok",
            "a < b & c > d",
            "50% [done]",
        ] {
            assert_eq!(clean(text), text);
        }
    }

    #[test]
    fn escape_sequences_go_whole() {
        let cases = [
            ("\u{1b}[31mred\u{1b}[0m", "red"),
            ("\u{1b}[2J\u{1b}[Hwiped", "wiped"),
            ("\u{1b}]0;evil title\u{7}x", "x"),
            (
                "\u{1b}]8;;http://evil\u{1b}\\link\u{1b}]8;;\u{1b}\\",
                "link",
            ),
            ("\u{1b}P1$r secret\u{1b}\\after", "after"),
            ("\u{1b}(Bascii", "ascii"),
            ("\u{9b}1;31mc1", "c1"),
            ("a\u{1b}", "a"),
            ("\u{1b}[", ""),
        ];
        for (dirty, clean_text) in cases {
            assert_eq!(clean(dirty), clean_text, "{dirty:?}");
        }
    }

    #[test]
    fn control_and_invisible_characters_go() {
        assert_eq!(clean("ding\u{7}\u{8}\u{8}dong\r\n"), "dingdong");
        assert_eq!(clean("tab\tstop"), "tab stop");
        assert_eq!(clean("admin\u{202e}txt.exe"), "admintxt.exe");
        assert_eq!(clean("zero\u{200b}width\u{feff}"), "zerowidth");
    }

    #[test]
    fn nothing_printed_can_start_a_sequence() {
        // Whatever comes in, what goes out has no ESC, no C0/C1 control.
        let nasty: String = (0u32..0x250).filter_map(char::from_u32).collect();
        let out = clean(&nasty.repeat(3));
        assert!(!out.chars().any(|c| c.is_control()), "{out:?}");
    }
}
