//! Nicknames and room names.
//!
//! Both are 1 to 32 characters with no whitespace or control characters, so they print on
//! one line and cannot be confused when listed. `server` is reserved as a nickname: the
//! robust messenger's server speaks under that name.

use std::fmt;

/// The longest name, in characters.
pub const MAX_NAME_CHARS: usize = 32;

/// The room a user joins when none is named.
pub const DEFAULT_ROOM: &str = "lobby";

/// Why a name was refused; its `Display` is the reason sent to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty, too long, with whitespace or control characters, or reserved.
    #[error("nick_not_allowed: {0}")]
    NickNotAllowed(&'static str),
    /// The same rules, for rooms.
    #[error("room_not_allowed: {0}")]
    RoomNotAllowed(&'static str),
}

/// A valid nickname.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Nick(String);

/// A valid room name.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Room(String);

/// The shared rule; `None` when the name is fine.
fn problem(name: &str) -> Option<&'static str> {
    let chars = name.chars().count();
    if chars == 0 {
        Some("a name needs at least 1 character")
    } else if chars > MAX_NAME_CHARS {
        Some("a name has at most 32 characters")
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("a name cannot contain spaces or control characters")
    } else if name
        .chars()
        .any(crate::sanitize::is_invisible_or_directional)
    {
        Some("a name cannot contain invisible or text-direction characters")
    } else {
        None
    }
}

impl Nick {
    /// Checks a nickname.
    pub fn parse(name: &str) -> Result<Self, NameError> {
        if let Some(problem) = problem(name) {
            return Err(NameError::NickNotAllowed(problem));
        }
        if name.eq_ignore_ascii_case("server") {
            return Err(NameError::NickNotAllowed("\"server\" is reserved"));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Room {
    /// Checks a room name.
    pub fn parse(name: &str) -> Result<Self, NameError> {
        match problem(name) {
            Some(problem) => Err(NameError::RoomNotAllowed(problem)),
            None => Ok(Self(name.to_owned())),
        }
    }

    /// The default room.
    pub fn lobby() -> Self {
        Self(DEFAULT_ROOM.to_owned())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Nick {
    type Error = NameError;
    fn try_from(name: String) -> Result<Self, NameError> {
        Self::parse(&name)
    }
}

impl TryFrom<String> for Room {
    type Error = NameError;
    fn try_from(name: String) -> Result<Self, NameError> {
        Self::parse(&name)
    }
}

impl From<Nick> for String {
    fn from(nick: Nick) -> String {
        nick.0
    }
}

impl From<Room> for String {
    fn from(room: Room) -> String {
        room.0
    }
}

impl fmt::Display for Nick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_nicks_are_accepted() {
        for name in ["alice", "Bob_42", "émile", "李雷", &"x".repeat(32)] {
            assert_eq!(Nick::parse(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn bad_nicks_are_refused_with_the_reason() {
        let cases = [
            ("", "at least 1"),
            (&"x".repeat(33) as &str, "at most 32"),
            ("two words", "spaces"),
            ("tab\there", "spaces"),
            ("bell\u{7}", "control"),
            ("esc\u{1b}[31m", "control"),
            ("server", "reserved"),
            ("SERVER", "reserved"),
            ("rtl\u{202e}evil", "text-direction"),
            ("zero\u{200b}width", "invisible"),
        ];
        for (name, reason) in cases {
            let error = Nick::parse(name).unwrap_err();
            assert!(
                error.to_string().starts_with("nick_not_allowed: "),
                "{error}"
            );
            assert!(error.to_string().contains(reason), "{name:?}: {error}");
        }
    }

    #[test]
    fn rooms_follow_the_same_rules_but_server_is_a_fine_room() {
        assert_eq!(Room::parse("server").unwrap().as_str(), "server");
        assert!(Room::parse("a room")
            .unwrap_err()
            .to_string()
            .starts_with("room_not_allowed"));
        assert_eq!(Room::lobby().as_str(), DEFAULT_ROOM);
    }

    #[test]
    fn names_are_checked_when_they_arrive_over_the_wire() {
        assert!(serde_json::from_str::<Nick>("\"alice\"").is_ok());
        assert!(serde_json::from_str::<Nick>("\"server\"").is_err());
        assert_eq!(
            serde_json::to_string(&Nick::parse("bob").unwrap()).unwrap(),
            "\"bob\""
        );
    }
}
