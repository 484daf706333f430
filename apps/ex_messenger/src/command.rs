//! What a line typed by a user means.
//!
//! Plain text is said to the room; a line starting with `/` is a command. A message that
//! should start with a slash is typed with two (`//like this` says `/like this`). Unlike the
//! original client, a line is a private message only if it *starts* with `/pm`.

use crate::names::{NameError, Nick, Room};
use crate::protocol::Request;
use crate::MAX_MESSAGE_BYTES;

/// A parsed input line: a request to the server, made here once (the message handler
/// only numbers and sends it), or something the client does itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Ask the server: say a line, a private message, join, leave, list.
    Send(Request),
    /// The command list.
    Help,
    /// Leave and exit.
    Quit,
    /// An empty line: nothing to do.
    Nothing,
}

/// Why a line was not understood; its `Display` is the one line shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// A `/word` that is not a command.
    #[error("unknown command {0}: type /help for the list")]
    Unknown(String),
    /// A command without what it needs.
    #[error("usage: {0}")]
    Usage(&'static str),
    /// A command given arguments it does not take.
    #[error("{0} takes no arguments: type /help for the list")]
    Extra(&'static str),
    /// A bad nick or room name.
    #[error("{0}")]
    Name(#[from] NameError),
    /// Over the size limit.
    #[error("message too long ({0} bytes): the limit is 4096 bytes")]
    TooLong(usize),
}

/// The help text, one command per line.
pub const HELP: &str = "\
Available commands:
  <text>             say <text> to the room (start with // to say a line beginning with /)
  /pm <nick> <text>  say <text> to <nick> only
  /join [room]       join the default room, or the named one (created if new)
  /leave             leave the room; you stay connected and can /join again
  /users             who is in the room
  /rooms             which rooms exist
  /help              this list
  /quit              leave and exit (end of input does the same)";

impl Command {
    /// Parses one line (without its line ending).
    pub fn parse(line: &str) -> Result<Command, CommandError> {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.len() > MAX_MESSAGE_BYTES {
            return Err(CommandError::TooLong(line.len()));
        }
        if line.trim().is_empty() {
            return Ok(Command::Nothing);
        }
        if let Some(literal) = line.strip_prefix("//") {
            return Ok(say(format!("/{literal}")));
        }
        let Some(command_line) = line.strip_prefix('/') else {
            return Ok(say(line.to_owned()));
        };
        let (word, rest) = match command_line.split_once(char::is_whitespace) {
            Some((word, rest)) => (word, rest.trim()),
            None => (command_line, ""),
        };
        let no_arguments = |command, name| {
            if rest.is_empty() {
                Ok(command)
            } else {
                Err(CommandError::Extra(name))
            }
        };
        match word {
            "pm" => {
                let (to, text) = rest
                    .split_once(char::is_whitespace)
                    .map(|(to, text)| (to, text.trim()))
                    .filter(|(_, text)| !text.is_empty())
                    .ok_or(CommandError::Usage("/pm <nick> <message>"))?;
                Ok(Command::Send(Request::Pm {
                    to: Nick::parse(to)?,
                    text: text.to_owned(),
                }))
            }
            "join" if rest.is_empty() => Ok(Command::Send(Request::Join(None))),
            "join" => Ok(Command::Send(Request::Join(Some(Room::parse(rest)?)))),
            "leave" => no_arguments(Command::Send(Request::Leave), "/leave"),
            "users" => no_arguments(Command::Send(Request::Users), "/users"),
            "rooms" => no_arguments(Command::Send(Request::Rooms), "/rooms"),
            "help" => no_arguments(Command::Help, "/help"),
            "quit" => no_arguments(Command::Quit, "/quit"),
            _ => Err(CommandError::Unknown(format!("/{word}"))),
        }
    }
}

fn say(text: String) -> Command {
    Command::Send(Request::Say { text })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nick(name: &str) -> Nick {
        Nick::parse(name).unwrap()
    }

    #[test]
    fn plain_text_is_said() {
        assert_eq!(Command::parse("hello all"), Ok(say("hello all".into())));
        assert_eq!(Command::parse("  spaced  "), Ok(say("  spaced  ".into())));
        assert_eq!(
            Command::parse("say /pm in the middle"),
            Ok(say("say /pm in the middle".into()))
        );
        assert_eq!(
            Command::parse("//pm is a command"),
            Ok(say("/pm is a command".into()))
        );
        assert_eq!(Command::parse("hi\r\n"), Ok(say("hi".into())));
        assert_eq!(Command::parse("   "), Ok(Command::Nothing));
        assert_eq!(Command::parse(""), Ok(Command::Nothing));
    }

    #[test]
    fn private_messages_name_a_valid_nick_and_carry_text() {
        assert_eq!(
            Command::parse("/pm bob  see you at 5 "),
            Ok(Command::Send(Request::Pm {
                to: nick("bob"),
                text: "see you at 5".into()
            }))
        );
        assert_eq!(
            Command::parse("/pm bob"),
            Err(CommandError::Usage("/pm <nick> <message>"))
        );
        assert_eq!(
            Command::parse("/pm"),
            Err(CommandError::Usage("/pm <nick> <message>"))
        );
        assert_eq!(
            Command::parse("/pm bob   "),
            Err(CommandError::Usage("/pm <nick> <message>"))
        );
        assert!(matches!(
            Command::parse("/pm server hi"),
            Err(CommandError::Name(_))
        ));
    }

    #[test]
    fn room_commands() {
        assert_eq!(
            Command::parse("/join"),
            Ok(Command::Send(Request::Join(None)))
        );
        assert_eq!(
            Command::parse("/join rust"),
            Ok(Command::Send(Request::Join(Some(
                Room::parse("rust").unwrap()
            ))))
        );
        assert!(matches!(
            Command::parse("/join two words"),
            Err(CommandError::Name(_))
        ));
        assert_eq!(Command::parse("/leave"), Ok(Command::Send(Request::Leave)));
        assert_eq!(Command::parse("/rooms"), Ok(Command::Send(Request::Rooms)));
        assert_eq!(Command::parse("/users"), Ok(Command::Send(Request::Users)));
    }

    #[test]
    fn other_commands_and_mistakes() {
        assert_eq!(Command::parse("/help"), Ok(Command::Help));
        assert_eq!(Command::parse("/quit"), Ok(Command::Quit));
        assert_eq!(
            Command::parse("/leave now"),
            Err(CommandError::Extra("/leave"))
        );
        let unknown = Command::parse("/dance").unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "unknown command /dance: type /help for the list"
        );
        assert!(matches!(Command::parse("/"), Err(CommandError::Unknown(_))));
    }

    #[test]
    fn messages_over_4_kib_are_refused() {
        assert!(matches!(
            Command::parse(&"x".repeat(4096)),
            Ok(Command::Send(Request::Say { .. }))
        ));
        assert_eq!(
            Command::parse(&"x".repeat(4097)),
            Err(CommandError::TooLong(4097))
        );
        let error = Command::parse(&"é".repeat(2049)).unwrap_err().to_string();
        assert!(!error.contains('\n') && error.contains("4096"), "{error}");
    }

    #[test]
    fn help_lists_every_command() {
        for command in [
            "/pm", "/join", "/leave", "/users", "/rooms", "/help", "/quit",
        ] {
            assert!(HELP.contains(command), "{command}");
        }
    }
}
