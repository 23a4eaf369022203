//! Trigger tokens: the secret Ashby sends on every call. Only their SHA-256 is ever stored or
//! compared; the token itself lives in a `SecretString` and never reaches a log line.

use std::fmt;

use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// SHA-256 of a trigger token; the key tenants are looked up by.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn of(token: &SecretString) -> Self {
        Self(Sha256::digest(token.expose_secret().as_bytes()).into())
    }
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Self(out))
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    /// Constant-time equality, so that a lookup's timing says nothing about how close a guess was.
    pub fn ct_eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to tell hashes apart in a debugger and reveals nothing usable.
        write!(f, "TokenHash({}…)", &self.to_hex()[..8])
    }
}

/// A fresh trigger token: 32 random bytes, URL-safe base64, prefixed so that it is recognisable in
/// a secret scanner.
pub fn generate_trigger_token() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    SecretString::from(format!(
        "ahub_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// A fresh Standard Webhooks signing secret (`whsec_` + base64 of 32 random bytes).
pub fn generate_signing_secret() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    SecretString::from(format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_round_trips_through_hex_and_hides_the_token_in_debug() {
        let t = SecretString::from("s3cret-token");
        let h = TokenHash::of(&t);
        assert_eq!(TokenHash::from_hex(&h.to_hex()), Some(h));
        assert!(h.ct_eq(&TokenHash::of(&SecretString::from("s3cret-token"))));
        assert!(!h.ct_eq(&TokenHash::of(&SecretString::from("s3cret-tokeN"))));
        assert!(!format!("{h:?}").contains("s3cret"));
        assert!(!format!("{t:?}").contains("s3cret"));
    }

    #[test]
    fn generated_tokens_differ_and_secrets_decode() {
        let a = generate_trigger_token();
        let b = generate_trigger_token();
        assert_ne!(a.expose_secret(), b.expose_secret());
        let s = generate_signing_secret();
        assert!(standardwebhooks::Webhook::new(s.expose_secret()).is_ok());
    }
}
