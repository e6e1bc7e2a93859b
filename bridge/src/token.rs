//! The bridge's secret: [`Token`], 256 random bits drawn at every start and shown as 64 hex
//! digits, compared in constant time (`subtle`) so response timing tells nothing about how
//! much of a guess was right. Where the token may come from (header, cookie, the printed URL)
//! is `guard.rs`'s business.

use std::fmt;

use subtle::ConstantTimeEq;

use crate::Error;

/// How many random bytes a token holds (256 bits; the contract asks for at least 128).
pub(crate) const TOKEN_BYTES: usize = 32;

/// A bearer token: 64 lowercase hex digits.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// Draws a new token from the operating system's random source.
    pub fn generate() -> Result<Self, Error> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| Error::Random(e.to_string()))?;
        let mut text = String::with_capacity(TOKEN_BYTES * 2);
        for b in bytes {
            text.push(char::from(HEX[usize::from(b >> 4)]));
            text.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        Ok(Self(text))
    }

    /// The token's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is this token, in time that depends only on the lengths.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        // The length is public (always 64); only the content is secret.
        candidate.len() == self.0.len() && bool::from(self.0.as_bytes().ct_eq(candidate))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_fresh_and_compared_exactly() {
        let a = Token::generate().expect("random");
        let b = Token::generate().expect("random");
        assert_eq!(a.as_str().len(), 64);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.as_str(), b.as_str());
        assert!(a.matches(a.as_str().as_bytes()));
        assert!(!a.matches(b.as_str().as_bytes()));
        assert!(!a.matches(&a.as_str().as_bytes()[..63]));
        assert!(!a.matches(b""));
        assert!(!format!("{a:?}").contains(a.as_str()));
    }
}
