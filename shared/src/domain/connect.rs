//! Customers connecting themselves: connect links (invites), and what the hub knows of a
//! tenant's connection (its health). Pure: the store keeps these, the connect use case and the
//! functions write them, operators and the connect page read them.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::{Ats, TenantId, TokenHash};
use crate::clock::Timestamp;

/// How long a connect link works unless the operator says otherwise.
pub const DEFAULT_INVITE_DAYS: u32 = 7;
/// The longest an operator may make a link work.
pub const MAX_INVITE_DAYS: u32 = 90;
/// A connect code's length: 32 random bytes (256 bits), URL-safe base64 without padding.
pub const CONNECT_CODE_LEN: usize = 43;
/// The last-call marker is rewritten at most this often per tenant: a warm Ashby call makes no
/// write, only the first one after this long does.
pub const CALL_RECORD_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// A delivery outcome already recorded is rewritten at most this often (a change is written at
/// once).
pub const DELIVERY_RECORD_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// A fresh connect code: 256 random bits. Shown once to the operator (in the link); the store
/// keeps only its SHA-256.
pub fn generate_connect_code() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    SecretString::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether `code` has the shape of a connect code (43 URL-safe base64 characters). Anything else
/// is refused before any lookup.
pub fn is_connect_code(code: &str) -> bool {
    code.len() == CONNECT_CODE_LEN
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The anti-forgery token of a connect page: derived from its code, so that the page carries it
/// without the hub storing anything, and no other page (no other code) has it. Only someone
/// holding the link can make it, and the link is the credential; the token's job is to prove
/// that a POST came from the page itself rather than from a form elsewhere that only knows the
/// URL (with the `Sec-Fetch-Site`/`Origin` check beside it).
pub fn csrf_token(code: &SecretString) -> String {
    let mut h = Sha256::new();
    h.update(b"ashby-hub connect csrf v1\0");
    h.update(code.expose_secret().as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
}

/// One connect link of a tenant, as stored: the hash of its code, never the code.
#[derive(Clone, Debug, PartialEq)]
pub struct Invite {
    pub hash: TokenHash,
    pub tenant_id: TenantId,
    pub created_at_ms: Timestamp,
    pub expires_at_ms: Timestamp,
    pub revoked_at_ms: Option<Timestamp>,
    /// When the page's "Show token" issued the trigger token (once per link).
    pub token_shown_at_ms: Option<Timestamp>,
}

/// Why a link no longer works.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InviteDead {
    Expired,
    Revoked,
}

impl Invite {
    /// What operators call a link: the first 12 hex digits of its code's hash (says nothing of
    /// the code itself).
    pub fn id(&self) -> String {
        self.hash.to_hex()[..12].to_owned()
    }

    pub fn check(&self, now: Timestamp) -> Result<(), InviteDead> {
        if self.revoked_at_ms.is_some() {
            Err(InviteDead::Revoked)
        } else if now >= self.expires_at_ms {
            Err(InviteDead::Expired)
        } else {
            Ok(())
        }
    }
}

/// The last authenticated call the tenant's ATS made (Ashby's refresh button makes one).
#[derive(Clone, Debug, PartialEq)]
pub struct AtsCall {
    pub at_ms: Timestamp,
    /// The path called, e.g. `/assessment.list`.
    pub route: String,
}

/// The last check of the tenant's Ashby API key that led to storing it.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyCheck {
    pub at_ms: Timestamp,
    /// The key's title in Ashby, "…" and its last four characters.
    pub label: String,
    /// Whether Ashby showed the key's scopes (and they held `candidates:write`); `false` when the
    /// key may not read its own scopes (stored with a warning).
    pub scopes_verified: bool,
}

/// What became of the last update the hub sent the tenant's ATS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryHealth {
    Delivered,
    /// The ATS refused the key (401/403), or no key is stored: parked until the key is fixed.
    Refused,
    /// Given up on after every retry.
    Dead,
}

impl DeliveryHealth {
    pub const ALL: [Self; 3] = [Self::Delivered, Self::Refused, Self::Dead];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Refused => "refused",
            Self::Dead => "dead",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryReport {
    pub at_ms: Timestamp,
    pub outcome: DeliveryHealth,
    /// Why, in words without PII or key (the delivery's error).
    pub detail: String,
}

/// What the hub knows of a tenant's connection. Written by the functions (each part by one
/// conditional update that touches nothing an operator writes), read with the tenant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TenantHealth {
    pub last_call: Option<AtsCall>,
    pub key: Option<KeyCheck>,
    pub last_delivery: Option<DeliveryReport>,
    /// A token issued by the connect page to replace the tenant's others: they stay valid until
    /// the ATS first calls with this one.
    pub pending_token: Option<TokenHash>,
}

/// The connection as the customer sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// The ATS has not yet called with one of the tenant's tokens.
    WaitingForAshby,
    /// Ashby has called, but no Ashby API key is stored.
    WaitingForKey,
    Connected,
    NeedsAttention,
}

impl ConnectionState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WaitingForAshby => "waiting_for_ashby",
            Self::WaitingForKey => "waiting_for_key",
            Self::Connected => "connected",
            Self::NeedsAttention => "needs_attention",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            Self::WaitingForAshby => "Waiting for Ashby",
            Self::WaitingForKey => "Waiting for your Ashby API key",
            Self::Connected => "Connected",
            Self::NeedsAttention => "Needs attention",
        }
    }
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The connection state with the sentence that explains it.
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    pub state: ConnectionState,
    pub detail: String,
}

impl TenantHealth {
    /// The connection of a tenant of `ats` with this health. `key_stored`: whether an ATS key is
    /// known to be stored (the key check, or a key an operator put).
    pub fn connection(&self, ats: Ats, key_stored: bool) -> Connection {
        if let Some(d) = &self.last_delivery {
            let problem = match d.outcome {
                DeliveryHealth::Delivered => None,
                DeliveryHealth::Refused => Some(format!(
                    "Ashby refused the key: results cannot reach Ashby until a working key \
                     with Candidates: Write is saved ({}).",
                    d.detail
                )),
                DeliveryHealth::Dead => Some(format!(
                    "An update could not be delivered to Ashby after every retry ({}); the \
                     hub's operator has been alerted.",
                    d.detail
                )),
            };
            if let Some(detail) = problem {
                return Connection {
                    state: ConnectionState::NeedsAttention,
                    detail,
                };
            }
        }
        let needs_key = ats == Ats::Ashby && !key_stored;
        match (&self.last_call, needs_key) {
            (None, _) => Connection {
                state: ConnectionState::WaitingForAshby,
                detail: if needs_key {
                    "Ashby has not called the hub yet. Paste the token into Ashby and press \
                     Update (or press Refresh there), and save your Ashby API key below."
                        .into()
                } else {
                    "Ashby has not called the hub yet. Paste the token into Ashby and press \
                     Update (or press Refresh there)."
                        .into()
                },
            },
            (Some(_), true) => Connection {
                state: ConnectionState::WaitingForKey,
                detail: "Ashby reached the hub with your token. Save your Ashby API key below \
                         so that results can be written back."
                    .into(),
            },
            (Some(_), false) => Connection {
                state: ConnectionState::Connected,
                detail: "Ashby reaches the hub with your token, and the hub holds your Ashby \
                         API key. Recruiters can start assessments from a candidate's profile."
                    .into(),
            },
        }
    }
}

/// The label the hub shows for a stored key: its title in Ashby, "…" and its last four
/// characters (never more of the key).
pub fn key_label(title: &str, key: &SecretString) -> String {
    let key = key.expose_secret();
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let title: String = title.trim().chars().take(80).collect();
    let title = if title.is_empty() {
        "Ashby API key".to_owned()
    } else {
        title
    };
    format!("{title} …{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_256_bits_of_url_safe_text_and_their_csrf_tokens_differ() {
        let a = generate_connect_code();
        let b = generate_connect_code();
        assert!(is_connect_code(a.expose_secret()));
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_ne!(csrf_token(&a), csrf_token(&b));
        assert_eq!(csrf_token(&a), csrf_token(&a.clone()));
        assert!(!csrf_token(&a).contains(a.expose_secret()));
        for bad in [
            "",
            "short",
            &"a".repeat(44),
            &format!("{}=", "a".repeat(42)),
        ] {
            assert!(!is_connect_code(bad), "{bad}");
        }
    }

    #[test]
    fn a_link_dies_when_it_expires_or_is_revoked() {
        let mut i = Invite {
            hash: TokenHash::of(&SecretString::from("c")),
            tenant_id: TenantId::parse("acme").expect("id"),
            created_at_ms: Timestamp::EPOCH,
            expires_at_ms: Timestamp::from_ms(100),
            revoked_at_ms: None,
            token_shown_at_ms: None,
        };
        assert_eq!(i.check(Timestamp::from_ms(99)), Ok(()));
        assert_eq!(i.check(Timestamp::from_ms(100)), Err(InviteDead::Expired));
        i.revoked_at_ms = Some(Timestamp::from_ms(5));
        assert_eq!(i.check(Timestamp::from_ms(10)), Err(InviteDead::Revoked));
        assert_eq!(i.id().len(), 12);
    }

    #[test]
    fn the_connection_follows_calls_keys_and_deliveries() {
        let mut h = TenantHealth::default();
        let state = |h: &TenantHealth, key| h.connection(Ats::Ashby, key).state;
        assert_eq!(state(&h, false), ConnectionState::WaitingForAshby);
        assert_eq!(state(&h, true), ConnectionState::WaitingForAshby);
        h.last_call = Some(AtsCall {
            at_ms: Timestamp::from_ms(1),
            route: "/assessment.list".into(),
        });
        assert_eq!(state(&h, false), ConnectionState::WaitingForKey);
        assert_eq!(state(&h, true), ConnectionState::Connected);
        assert_eq!(
            h.connection(Ats::Greenhouse, false).state,
            ConnectionState::Connected
        );
        for (outcome, expected) in [
            (DeliveryHealth::Refused, ConnectionState::NeedsAttention),
            (DeliveryHealth::Dead, ConnectionState::NeedsAttention),
            (DeliveryHealth::Delivered, ConnectionState::Connected),
        ] {
            h.last_delivery = Some(DeliveryReport {
                at_ms: Timestamp::from_ms(2),
                outcome,
                detail: "Ashby answered 401".into(),
            });
            assert_eq!(state(&h, true), expected, "{outcome:?}");
        }
    }

    #[test]
    fn a_key_label_shows_the_title_and_four_characters_only() {
        let key = SecretString::from("abcdefghijklmnop1234");
        assert_eq!(key_label("Hub key", &key), "Hub key …1234");
        assert_eq!(key_label("  ", &key), "Ashby API key …1234");
        assert!(!key_label("t", &key).contains("p1234"));
    }
}
