//! Property tests: what users type and what strangers send never panics the parsers, and the
//! documented rules of commands, names and the sanitizer hold for every input, not just the
//! examples in the unit tests.

use ex_messenger::command::{Command, CommandError};
use ex_messenger::names::{NameError, Nick, Room, MAX_NAME_CHARS};
use ex_messenger::protocol::Request;
use ex_messenger::sanitize::clean;
use ex_messenger::MAX_MESSAGE_BYTES;
use proptest::prelude::*;
use proptest::test_runner::Config;

/// Few enough cases for a debug build; no regression files written into the source tree.
fn config() -> Config {
    Config {
        failure_persistence: None,
        ..Config::with_cases(256)
    }
}

/// Characters that break things: controls, escape-sequence introducers and terminators,
/// invisible and text-direction characters, odd whitespace, multi-byte characters.
const SPECIAL: &[char] = &[
    '\0', '\u{7}', '\u{8}', '\t', '\n', '\u{b}', '\u{c}', '\r', '\u{1b}', '\u{7f}', '\u{80}',
    '\u{85}', '\u{90}', '\u{98}', '\u{9b}', '\u{9c}', '\u{9d}', '\u{9e}', '\u{9f}', '\u{a0}',
    '\u{ad}', '\u{61c}', '\u{180e}', '\u{200b}', '\u{200c}', '\u{200d}', '\u{200e}', '\u{200f}',
    '\u{2028}', '\u{2029}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2060}',
    '\u{2061}', '\u{2062}', '\u{2063}', '\u{2064}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
    '\u{3000}', '\u{feff}', '\u{fffd}', '[', ']', '\\', '/', 'P', 'X', '^', '_', '(', 'm', ' ',
    '~', '@', 'é', '李', '🦀',
];

/// Pieces that steer the parsers into their interesting branches.
const FRAGMENTS: &[&str] = &[
    "\u{1b}[",
    "\u{1b}]",
    "\u{1b}P",
    "\u{1b}X",
    "\u{1b}^",
    "\u{1b}_",
    "\u{1b}\\",
    "\u{1b}(",
    "\u{1b}[31m",
    "\u{1b}]0;title\u{7}",
    "\u{9b}",
    "\u{9d}",
    "/",
    "//",
    "/pm ",
    "/pm",
    "/join ",
    "/join",
    "/leave",
    "/users",
    "/rooms",
    "/help",
    "/quit",
    "\r\n",
    "\n",
    "server",
    "SERVER",
    "  ",
];

/// The Unicode `Bidi_Control` characters (PropList.txt): every character whose only job is
/// to change the direction text is laid out in.
const BIDI_CONTROL: &[char] = &[
    '\u{61c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}',
    '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
];

/// The invisible and text-direction characters the sanitizer and the name rules list, written
/// out here independently of the crate's own function.
fn listed_invisible_or_directional(c: char) -> bool {
    matches!(
        c,
        '\u{061c}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}'
            | '\u{e0000}'..='\u{e007f}'
    )
}

fn nasty_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => any::<char>(),
        3 => prop::sample::select(SPECIAL),
        2 => (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap()),
        1 => (0x7fu32..=0x9f).prop_map(|c| char::from_u32(c).unwrap()),
        3 => (0x20u8..0x7f).prop_map(char::from),
    ]
}

/// Arbitrary text biased towards trouble, up to about `max_pieces` characters or fragments.
fn nasty_text(max_pieces: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => nasty_char().prop_map(String::from),
        1 => prop::sample::select(FRAGMENTS).prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..max_pieces).prop_map(|pieces| pieces.concat())
}

/// Any string at all: every `char` equally likely to show up, not only printable ones.
fn any_text(max_chars: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..max_chars).prop_map(String::from_iter)
}

/// Long lines, from a few hundred bytes to about 10 KB (and beyond for 4-byte characters).
fn long_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any_text(3000),
        (nasty_text(40), 1usize..400).prop_map(|(chunk, times)| chunk.repeat(times)),
        ("[ -~]{0,16}", 3000usize..10_000)
            .prop_map(|(start, len)| format!("{start}{}", "x".repeat(len))),
    ]
}

/// A line near the size limit: `len` bytes of text (ASCII and multi-byte characters) before
/// an optional line ending.
fn line_near_the_limit() -> impl Strategy<Value = (String, &'static str)> {
    let filler = prop::sample::select(vec!["x", "é", "李", "🦀", " ", "/"]);
    (
        "/?(pm|join)? ?",
        filler,
        (MAX_MESSAGE_BYTES - 8)..(MAX_MESSAGE_BYTES + 8),
        prop::sample::select(vec!["", "\n", "\r\n", "\r", "\n\n\r"]),
    )
        .prop_map(|(start, filler, target, ending)| {
            let mut line = start;
            while line.len() + filler.len() <= target {
                line.push_str(filler);
            }
            while line.len() < target {
                line.push('y');
            }
            (line, ending)
        })
}

/// Strings close to valid names: letters, digits and punctuation of any script, sometimes
/// with one troublesome character, sometimes a spelling of the reserved nick.
fn near_name() -> impl Strategy<Value = String> {
    let base = prop_oneof![
        4 => "[\\p{L}\\p{N}_.\\-]{0,36}",
        1 => "(?i:server)",
        1 => "[a-z]{0,4}(?i:server)[a-z]{0,4}",
    ];
    prop_oneof![
        3 => base.clone(),
        2 => (base, any::<prop::sample::Index>(), nasty_char()).prop_map(|(name, at, c)| {
            let mut chars: Vec<char> = name.chars().collect();
            chars.insert(at.index(chars.len() + 1), c);
            chars.into_iter().collect()
        }),
    ]
}

fn any_name() -> impl Strategy<Value = String> {
    prop_oneof![any_text(40), nasty_text(40), near_name()]
}

/// The documented name rules, checked here independently of `names.rs`.
fn follows_the_name_rules(name: &str) -> bool {
    let chars = name.chars().count();
    (1..=MAX_NAME_CHARS).contains(&chars)
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || listed_invisible_or_directional(c))
}

fn one_line(error: &CommandError) -> Result<(), TestCaseError> {
    let shown = error.to_string();
    prop_assert!(!shown.contains('\n'), "not one line: {shown:?}");
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Any line whatever parses without panicking, and its size alone decides `TooLong`: a
    /// line (without its ending) of more than MAX_MESSAGE_BYTES bytes is refused with its
    /// length, a shorter one never is. Errors are one line.
    #[test]
    fn command_parse_never_panics_and_refuses_long_lines(
        line in prop_oneof![nasty_text(64), any_text(64), long_text()]
    ) {
        let result = Command::parse(&line);
        let body = line.trim_end_matches(['\r', '\n']);
        if body.len() > MAX_MESSAGE_BYTES {
            prop_assert_eq!(result, Err(CommandError::TooLong(body.len())));
        } else {
            prop_assert!(!matches!(result, Err(CommandError::TooLong(_))), "{:?}", result);
            if let Err(error) = &result {
                one_line(error)?;
            }
        }
    }

    /// At the limit, to the byte: 4096 bytes pass, 4097 do not, whatever the characters and
    /// whatever line ending follows.
    #[test]
    fn command_size_limit_is_exact((text, ending) in line_near_the_limit()) {
        let result = Command::parse(&format!("{text}{ending}"));
        if text.len() > MAX_MESSAGE_BYTES {
            prop_assert_eq!(result, Err(CommandError::TooLong(text.len())));
        } else {
            prop_assert!(!matches!(result, Err(CommandError::TooLong(_))), "{:?}", result);
        }
    }

    /// What a line means follows the module's rules: blank is nothing, plain text is said as
    /// typed, `//` says a line starting with one slash, `/pm` names a valid nick and carries
    /// trimmed, non-empty text from the line, `/join` a valid room.
    #[test]
    fn command_meaning_follows_the_rules(line in prop_oneof![nasty_text(48), any_text(48)]) {
        let result = Command::parse(&line);
        let body = line.trim_end_matches(['\r', '\n']);
        if body.trim().is_empty() {
            prop_assert_eq!(result, Ok(Command::Nothing));
        } else if let Some(rest) = body.strip_prefix("//") {
            prop_assert_eq!(result, Ok(Command::Send(Request::Say { text: format!("/{rest}") })));
        } else if !body.starts_with('/') {
            prop_assert_eq!(result, Ok(Command::Send(Request::Say { text: body.to_owned() })));
        } else {
            match result {
                Ok(Command::Send(Request::Say { .. })) | Ok(Command::Nothing) => {
                    prop_assert!(false, "a command line was not a command: {:?}", result);
                }
                Ok(Command::Send(Request::Pm { to, text })) => {
                    prop_assert!(body.starts_with("/pm"), "{body:?}");
                    prop_assert_eq!(Nick::parse(to.as_str()), Ok(to.clone()));
                    prop_assert!(!text.is_empty() && text.trim() == text, "{text:?}");
                    prop_assert!(body.contains(&text), "{text:?} not from {body:?}");
                }
                Ok(Command::Send(Request::Join(Some(room)))) => {
                    prop_assert!(body.starts_with("/join"), "{body:?}");
                    prop_assert_eq!(Room::parse(room.as_str()), Ok(room.clone()));
                }
                Ok(_) => {}
                Err(error) => one_line(&error)?,
            }
        }
    }

    /// Nothing that comes out of the sanitizer can start or be part of a control sequence:
    /// no ESC, no C0 control (tabs become spaces, nothing else is kept), no DEL, no C1
    /// control, none of the listed zero-width or text-direction characters.
    #[test]
    fn clean_output_has_no_control_sequence(
        text in prop_oneof![nasty_text(80), any_text(80), long_text()]
    ) {
        let out = clean(&text);
        for c in out.chars() {
            prop_assert!(c != '\u{1b}', "ESC in {out:?}");
            prop_assert!(!('\0'..='\u{1f}').contains(&c), "C0 {c:?} in {out:?}");
            prop_assert!(c != '\u{7f}', "DEL in {out:?}");
            prop_assert!(!('\u{80}'..='\u{9f}').contains(&c), "C1 {c:?} in {out:?}");
            prop_assert!(!c.is_control(), "control {c:?} in {out:?}");
            prop_assert!(
                !listed_invisible_or_directional(c),
                "invisible or directional {c:?} in {out:?}"
            );
        }
    }

    /// The module promises to remove text-direction characters: all of Unicode's
    /// `Bidi_Control` set, then, not only the embeddings, overrides and isolates.
    #[test]
    fn clean_removes_every_bidi_control(
        text in prop::collection::vec(
            prop_oneof![1 => prop::sample::select(BIDI_CONTROL), 2 => nasty_char()],
            0..24,
        ).prop_map(String::from_iter)
    ) {
        let out = clean(&text);
        let left: Vec<char> = out.chars().filter(|c| BIDI_CONTROL.contains(c)).collect();
        prop_assert!(left.is_empty(), "{left:?} left in {out:?}");
    }

    /// Cleaning clean text changes nothing.
    #[test]
    fn clean_is_idempotent(text in prop_oneof![nasty_text(80), any_text(80)]) {
        let once = clean(&text);
        prop_assert_eq!(clean(&once), once);
    }

    /// "Tabs become spaces; nothing else is changed": what comes out is what went in, in
    /// order, less what was removed; and text with nothing to remove comes out unchanged.
    #[test]
    fn clean_only_removes(text in prop_oneof![nasty_text(80), any_text(80), "[ -~]{0,200}"]) {
        let out = clean(&text);
        let mut source = text.chars().map(|c| if c == '\t' { ' ' } else { c });
        for c in out.chars() {
            prop_assert!(source.any(|s| s == c), "{c:?} was added: {text:?} -> {out:?}");
        }
        let nothing_to_remove = !text
            .chars()
            .any(|c| c != '\t' && (c.is_control() || listed_invisible_or_directional(c)));
        if nothing_to_remove {
            prop_assert_eq!(out, text.replace('\t', " "));
        }
    }

    /// Printable ASCII is never touched.
    #[test]
    fn clean_keeps_printable_ascii(text in "[ -~]{0,300}") {
        prop_assert_eq!(clean(&text), text);
    }

    /// A nickname is accepted exactly when it follows the documented rules and is not
    /// `server` (in any ASCII case); an accepted one is the name as given.
    #[test]
    fn nick_parse_accepts_exactly_the_valid_names(name in any_name()) {
        let valid = follows_the_name_rules(&name) && !name.eq_ignore_ascii_case("server");
        match Nick::parse(&name) {
            Ok(nick) => {
                prop_assert!(valid, "accepted {name:?}");
                prop_assert_eq!(nick.as_str(), name.as_str());
                prop_assert_eq!(nick.to_string(), name.clone());
                prop_assert_eq!(Nick::parse(nick.as_str()), Ok(nick.clone()));
            }
            Err(error) => {
                prop_assert!(!valid, "refused {name:?}: {error}");
                prop_assert!(matches!(error, NameError::NickNotAllowed(_)), "{error:?}");
                prop_assert!(!error.to_string().contains('\n'), "{error}");
            }
        }
    }

    /// Room names follow the same rules, with `server` a fine room.
    #[test]
    fn room_parse_accepts_exactly_the_valid_names(name in any_name()) {
        let valid = follows_the_name_rules(&name);
        match Room::parse(&name) {
            Ok(room) => {
                prop_assert!(valid, "accepted {name:?}");
                prop_assert_eq!(room.as_str(), name.as_str());
                prop_assert_eq!(room.to_string(), name.clone());
                prop_assert_eq!(Room::parse(room.as_str()), Ok(room.clone()));
            }
            Err(error) => {
                prop_assert!(!valid, "refused {name:?}: {error}");
                prop_assert!(matches!(error, NameError::RoomNotAllowed(_)), "{error:?}");
                prop_assert!(!error.to_string().contains('\n'), "{error}");
            }
        }
    }

    /// Names "cannot contain invisible or text-direction characters": none of Unicode's
    /// `Bidi_Control` set gets into an accepted nick or room, so `alice` and `alice` plus
    /// an invisible direction mark cannot both be names.
    #[test]
    fn names_refuse_every_bidi_control(
        (name, at, mark) in (
            "[a-z]{1,30}",
            any::<prop::sample::Index>(),
            prop::sample::select(BIDI_CONTROL),
        )
    ) {
        let mut chars: Vec<char> = name.chars().collect();
        chars.insert(at.index(chars.len() + 1), mark);
        let marked: String = chars.into_iter().collect();
        prop_assert!(Nick::parse(&marked).is_err(), "nick {marked:?} accepted");
        prop_assert!(Room::parse(&marked).is_err(), "room {marked:?} accepted");
    }
}
