//! Session tokens: minted and checked with a key derived from the cluster key, so a
//! restarted message server, and every other server of the cluster, recognises them.

use ring::hmac;

use crate::names::Nick;
use crate::protocol::Token;

/// The servers' token key (HMAC-SHA256).
#[derive(Clone)]
pub struct SessionKeys {
    key: hmac::Key,
}

/// A key for one use (`label`) from the cluster's secret: tokens and the servers' seals
/// never share a key.
pub fn derive(secret: &[u8], label: &str) -> hmac::Key {
    let root = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::Key::new(
        hmac::HMAC_SHA256,
        hmac::sign(&root, label.as_bytes()).as_ref(),
    )
}

impl SessionKeys {
    /// A fresh random key (tokens valid on this server process only).
    pub fn generate() -> Result<Self, ring::error::Unspecified> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())?;
        Ok(Self { key })
    }

    /// The key every server holding the cluster secret `secret` derives alike.
    pub fn from_secret(secret: &[u8]) -> Self {
        Self {
            key: derive(secret, "ex_messenger session tokens"),
        }
    }

    /// The token for `nick` joined from `node` in client session `session`.
    pub fn issue(&self, nick: &Nick, node: &str, session: u64) -> Token {
        let tag = hmac::sign(&self.key, &Self::message(nick, node, session));
        Token {
            nick: nick.clone(),
            node: node.to_owned(),
            session,
            mac: tag.as_ref().iter().map(|b| format!("{b:02x}")).collect(),
        }
    }

    /// Whether this server (process) issued `token`; constant-time.
    pub fn verify(&self, token: &Token) -> bool {
        let Some(mac) = decode_hex(&token.mac) else {
            return false;
        };
        let message = Self::message(&token.nick, &token.node, token.session);
        hmac::verify(&self.key, &message, &mac).is_ok()
    }

    /// Nick, node and session, separated by a byte none may contain (names have no
    /// controls).
    fn message(nick: &Nick, node: &str, session: u64) -> Vec<u8> {
        let session = session.to_string();
        [
            nick.as_str().as_bytes(),
            b"\0",
            node.as_bytes(),
            b"\0",
            session.as_bytes(),
        ]
        .concat()
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nick(name: &str) -> Nick {
        Nick::parse(name).unwrap()
    }

    #[test]
    fn a_token_proves_its_nick_and_node_only() {
        let keys = SessionKeys::generate().unwrap();
        let token = keys.issue(&nick("alice"), "client-1@127.0.0.1", 7);
        assert!(keys.verify(&token));

        let mut as_bob = token.clone();
        as_bob.nick = nick("bob");
        assert!(!keys.verify(&as_bob), "the MAC is bound to the nick");
        let mut elsewhere = token.clone();
        elsewhere.node = "client-2@127.0.0.1".into();
        assert!(!keys.verify(&elsewhere), "the MAC is bound to the node");
        let mut other_session = token.clone();
        other_session.session = 8;
        assert!(
            !keys.verify(&other_session),
            "the MAC is bound to the session"
        );
        let mut garbage = token.clone();
        garbage.mac = "zz".into();
        assert!(!keys.verify(&garbage));
    }

    #[test]
    fn servers_with_the_same_secret_accept_each_others_tokens_and_no_others() {
        let token = SessionKeys::from_secret(b"ours").issue(&nick("alice"), "n", 1);
        assert!(SessionKeys::from_secret(b"ours").verify(&token));
        assert!(!SessionKeys::from_secret(b"theirs").verify(&token));
    }

    #[test]
    fn another_server_process_does_not_accept_the_token() {
        let token = SessionKeys::generate()
            .unwrap()
            .issue(&nick("alice"), "n", 1);
        assert!(!SessionKeys::generate().unwrap().verify(&token));
    }
}
