//! What the server accepts from a user, in one place: every request against the flood
//! limit, every text (a line, a private message, a line sent again) against the size limit,
//! cleaned, and not empty once cleaned. The client checks too; a hand-made client may not.

use std::time::Instant;

use crate::protocol::Refusal;
use crate::throttle::Throttle;

/// Takes one request from a user's flood allowance; past it the request is refused.
/// Every request counts, not only lines said: a `/pm` or `/join` storm costs as much.
pub fn admit(throttle: &mut Throttle) -> Result<(), Refusal> {
    throttle
        .take(Instant::now())
        .map_err(|wait| Refusal::SlowDown {
            wait_ms: wait.as_millis().try_into().unwrap_or(u64::MAX),
        })
}

/// A text as others are shown it: within the size limit, cleaned, and not empty once
/// cleaned; or the refusal.
pub fn text(text: &str) -> Result<String, Refusal> {
    if text.len() > crate::MAX_MESSAGE_BYTES {
        return Err(Refusal::MessageTooLong {
            bytes: text.len(),
            limit: crate::MAX_MESSAGE_BYTES,
        });
    }
    let text = crate::sanitize::clean(text);
    match text.trim().is_empty() {
        true => Err(Refusal::EmptyMessage),
        false => Ok(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_is_cleaned_and_refused_when_too_long_or_empty_once_cleaned() {
        assert_eq!(text("hi \u{1b}[31mthere").unwrap(), "hi there");
        assert_eq!(text("\u{7}\u{1b}"), Err(Refusal::EmptyMessage));
        let long = "x".repeat(crate::MAX_MESSAGE_BYTES + 1);
        assert_eq!(text(&long).map_err(|r| r.code()), Err("message_too_long"));
    }
}
