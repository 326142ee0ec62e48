//! The poll tokens sockets are registered under, made from the core's slab keys: a
//! connection polls under its key's number, a bridge under a number counted down from
//! [`FIRST_BRIDGE`]; listeners, lingering sockets, the waker and signals have ranges of
//! their own, out of both.

use mio::Token;

use crate::core::keys::{BridgeKey, ConnKey, Key};

/// Bridge tokens count down from here, far below the listeners' (at most 256) and far
/// above any connection's (a `u32`).
const FIRST_BRIDGE: usize = usize::MAX - 1024;

impl BridgeKey {
    /// The poll token the bridge's upstream socket is registered under.
    pub fn token(self) -> Token {
        Token(FIRST_BRIDGE - self.index())
    }

    /// The bridge a poll token would stand for (the caller checks that it exists).
    pub fn from_token(token: Token) -> Option<BridgeKey> {
        let index = FIRST_BRIDGE.checked_sub(token.0)?;
        (index < 1024).then(|| BridgeKey::from_index(index))
    }
}

impl ConnKey {
    /// The poll token the connection's socket is registered under.
    pub fn token(self) -> Token {
        Token(self.index())
    }

    /// The connection a poll token stands for, if it can be one (listener, bridge, waker
    /// and signal tokens sit near `usize::MAX`, out of a key's range).
    pub fn from_token(token: Token) -> Option<ConnKey> {
        u32::try_from(token.0)
            .ok()
            .map(|index| ConnKey::from_index(index as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_key_round_trips_through_its_poll_token() {
        let key = ConnKey::from_index(42);
        assert_eq!(key.token(), Token(42));
        assert_eq!(ConnKey::from_token(key.token()), Some(key));
        assert_eq!(ConnKey::from_token(Token(usize::MAX - 1)), None);
    }

    #[test]
    fn a_bridge_key_round_trips_through_its_poll_token_apart_from_connections() {
        let key = BridgeKey::from_index(3);
        assert_eq!(BridgeKey::from_token(key.token()), Some(key));
        assert_eq!(ConnKey::from_token(key.token()), None);
        assert_eq!(BridgeKey::from_token(ConnKey::from_index(3).token()), None);
        assert_eq!(BridgeKey::from_token(Token(usize::MAX)), None);
    }
}
