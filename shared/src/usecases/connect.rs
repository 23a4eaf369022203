//! The customer's connect page: a link (`/connect/<code>`) that an operator sent, on which the
//! customer's Ashby admin gets the trigger token, saves the Ashby API key and watches the
//! connection come up. Everything here works from the code: it is hashed, looked up, and must
//! name an unrevoked, unexpired link of an enabled tenant. Failed attempts (unknown or dead
//! links, forged requests, refused keys) are counted per source address and per link and
//! refused for a while once there are too many.
//!
//! No code, token or key reaches a log line: they exist only as `SecretString`s and hashes.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::ats::ashby::{CANDIDATES_WRITE, KeyInfo};
use crate::clock::Timestamp;
use crate::domain::connect::{is_connect_code, key_label};
use crate::domain::{
    Ats, Connection, Invite, InviteDead, KeyCheck, TokenHash, generate_trigger_token,
};
use crate::metrics::{dimensions, names};
use crate::ports::{Account, IssueOutcome, StoreError};

/// Failed attempts allowed per source address, and per link, in one window.
pub const MAX_FAILURES_PER_ADDRESS: u32 = 30;
pub const MAX_FAILURES_PER_LINK: u32 = 10;
/// The window failures are counted in.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The longest key accepted; Ashby's keys are far shorter.
const MAX_KEY_LEN: usize = 512;

/// Why a connect request was not served.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// No such link (or not the shape of one).
    #[error("This connect link does not exist.")]
    NotFound,
    /// The link expired or was revoked, or its tenant is disabled or gone.
    #[error("This connect link no longer works.")]
    Gone(GoneReason),
    /// Too many failed attempts from this address or on this link.
    #[error("Too many failed attempts. Try again in {0} minutes.")]
    Limited(u64),
    /// Not from the page itself (another origin, or without the page's anti-forgery token).
    #[error("This request did not come from the connect page; nothing was changed.")]
    Forged,
    #[error("The token was already shown on this page. If you did not copy it, issue a new token.")]
    AlreadyShown,
    #[error(
        "This account holds as many tokens as it may. Ask the person who sent the link to \
         revoke an old one."
    )]
    TooManyTokens,
    /// A pasted key that cannot be one (empty, too long, spaces inside).
    #[error("{0}")]
    BadKey(&'static str),
    #[error("The hub's storage is temporarily unavailable; please try again.")]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoneReason {
    Expired,
    Revoked,
    /// The tenant is disabled or no longer exists.
    Closed,
}

/// Where a request came from, for the failure limits: its source address (API Gateway's), or
/// `None` where there is none (the local hub). Never logged.
#[derive(Debug, Clone)]
pub struct Source(pub Option<String>);

/// An open link: the invite, its tenant and what the page shows of the connection.
#[derive(Debug, Clone)]
pub struct Opened {
    pub hash: TokenHash,
    pub invite: Invite,
    pub account: Account,
    /// Whether an Ashby API key is stored (by this page, or by an operator).
    pub key_stored: bool,
    pub connection: Connection,
}

fn window(now: Timestamp) -> i64 {
    now.as_ms() / FAILURE_WINDOW.as_millis() as i64
}

fn address_key(source: &Source, now: Timestamp) -> String {
    let addr = source.0.as_deref().unwrap_or("local");
    let digest = hex::encode(Sha256::digest(addr.as_bytes()));
    format!("connect-address:{digest}:{}", window(now))
}

fn link_key(hash: &TokenHash, now: Timestamp) -> String {
    format!("connect-link:{}:{}", hash.to_hex(), window(now))
}

/// Minutes until the current window ends (at least 1).
fn minutes_left(now: Timestamp) -> u64 {
    let len = FAILURE_WINDOW.as_millis() as i64;
    let left_ms = len - now.as_ms().rem_euclid(len);
    (left_ms as u64).div_ceil(60_000).max(1)
}

/// Refuses at once when the address or the link has used up its failures.
async fn check_limits(
    app: &App,
    source: &Source,
    hash: Option<&TokenHash>,
) -> Result<(), ConnectError> {
    let now = app.clock.now();
    let limited = app.store.failures(&address_key(source, now)).await? >= MAX_FAILURES_PER_ADDRESS
        || match hash {
            Some(h) => app.store.failures(&link_key(h, now)).await? >= MAX_FAILURES_PER_LINK,
            None => false,
        };
    if limited {
        app.metrics
            .count_with(names::CONNECT_REFUSED, dimensions::REASON, "limited", 1);
        return Err(ConnectError::Limited(minutes_left(now)));
    }
    Ok(())
}

/// Counts one failed attempt against the address and, if known, the link.
pub async fn fail(app: &App, source: &Source, hash: Option<&TokenHash>, reason: &'static str) {
    app.metrics
        .count_with(names::CONNECT_REFUSED, dimensions::REASON, reason, 1);
    let now = app.clock.now();
    let expires = (now + FAILURE_WINDOW + FAILURE_WINDOW).as_secs();
    let mut keys = vec![address_key(source, now)];
    if let Some(h) = hash {
        keys.push(link_key(h, now));
    }
    for k in keys {
        if let Err(e) = app.store.add_failure(&k, expires).await {
            tracing::warn!(error = %e, "could not count a failed connect attempt");
        }
    }
}

/// Opens the link `code`: the page's state, or why it cannot be shown. Reads only.
pub async fn open(app: &App, code: &SecretString, source: &Source) -> Result<Opened, ConnectError> {
    let shaped = is_connect_code(code.expose_secret());
    let hash = TokenHash::of(code);
    check_limits(app, source, shaped.then_some(&hash)).await?;
    if !shaped {
        fail(app, source, None, "unknown_link").await;
        return Err(ConnectError::NotFound);
    }
    let Some(invite) = app.store.invite(&hash).await? else {
        fail(app, source, None, "unknown_link").await;
        return Err(ConnectError::NotFound);
    };
    if let Err(dead) = invite.check(app.clock.now()) {
        fail(app, source, None, "dead_link").await;
        return Err(ConnectError::Gone(match dead {
            InviteDead::Expired => GoneReason::Expired,
            InviteDead::Revoked => GoneReason::Revoked,
        }));
    }
    let account = match app.store.account(&invite.tenant_id).await? {
        // Connect pages are for Ashby accounts (a Greenhouse one has no Ashby key to save).
        Some(a) if !a.tenant.disabled && a.tenant.ats == Ats::Ashby => a,
        _ => {
            fail(app, source, None, "dead_link").await;
            return Err(ConnectError::Gone(GoneReason::Closed));
        }
    };
    tracing::Span::current().record("tenant", account.tenant.id.as_str());
    let key_stored = account.health.key.is_some()
        || app
            .keys
            .has_ashby_key(&account.tenant.id)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let connection = account.health.connection(account.tenant.ats, key_stored);
    Ok(Opened {
        hash,
        invite,
        account,
        key_stored,
        connection,
    })
}

/// Issues a trigger token from the page: once per link with `reveal` ("Show token"), or as a
/// replacement ("Issue a new token"); the tenant's other tokens keep working until its ATS
/// calls with the new one. The token is returned to be shown once and is never kept.
pub async fn issue_token(
    app: &App,
    opened: &Opened,
    reveal: bool,
) -> Result<SecretString, ConnectError> {
    let token = generate_trigger_token();
    let outcome = app
        .store
        .issue_connect_token(
            &opened.hash,
            &TokenHash::of(&token),
            reveal,
            app.clock.now(),
        )
        .await?;
    match outcome {
        IssueOutcome::Issued => {
            tracing::info!(
                reveal,
                "the connect page issued a trigger token to the tenant"
            );
            Ok(token)
        }
        IssueOutcome::AlreadyShown => Err(ConnectError::AlreadyShown),
        IssueOutcome::TooManyTokens => Err(ConnectError::TooManyTokens),
        IssueOutcome::NoInvite => Err(ConnectError::Gone(GoneReason::Revoked)),
    }
}

/// What saving a pasted key did, in the customer's words.
#[derive(Debug, Clone, PartialEq)]
pub enum KeySaved {
    /// Stored; Ashby showed `candidates:write` among its scopes. `resent`: parked updates
    /// released to be sent with it.
    Stored { label: String, resent: Resent },
    /// Stored, but the key may not read its own scopes: the customer must make sure it has
    /// Candidates: Write.
    StoredUnverified { label: String, resent: Resent },
    /// Not stored: Ashby showed its scopes, without `candidates:write`.
    MissingPermission,
    /// Not stored: Ashby refused the key (401, 403).
    Refused,
    /// Not stored: Ashby could not be asked.
    Unreachable,
}

impl KeySaved {
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Stored { .. } => "stored",
            Self::StoredUnverified { .. } => "stored_unverified",
            Self::MissingPermission => "missing_permission",
            Self::Refused => "refused",
            Self::Unreachable => "unreachable",
        }
    }
    pub fn stored(&self) -> bool {
        matches!(self, Self::Stored { .. } | Self::StoredUnverified { .. })
    }
    /// How many parked results were released to go out with the saved key.
    pub fn resent(&self) -> u32 {
        match self {
            Self::Stored { resent, .. } | Self::StoredUnverified { resent, .. } => resent.count,
            _ => 0,
        }
    }
    pub fn label(&self) -> Option<&str> {
        match self {
            Self::Stored { label, .. } | Self::StoredUnverified { label, .. } => Some(label),
            _ => None,
        }
    }
    pub fn message(&self) -> String {
        match self {
            Self::Stored { label, resent } => format!(
                "Saved. Ashby confirmed the key ({label}) has the Candidates: Write \
                 permission.{}",
                resent.sentence()
            ),
            Self::StoredUnverified { label, resent } => format!(
                "Saved ({label}), but the key may not read its own permissions, so the hub \
                 could not check them. Make sure it has Candidates: Write in Ashby (Admin → \
                 API Keys), or results will not reach Ashby.{}",
                resent.sentence()
            ),
            Self::MissingPermission => "Not saved: this key lacks the Candidates: Write \
                permission the hub needs to write results into Ashby. In Ashby, open Admin → \
                API Keys, give the key Candidates: Write (or create a new key with it), and \
                paste it again."
                .into(),
            Self::Refused => "Not saved: Ashby did not accept this key. Check that you copied \
                the whole key and that it is active in Ashby (Admin → API Keys), then paste \
                it again."
                .into(),
            Self::Unreachable => "Not saved: the hub could not reach Ashby to check the key. \
                Please try again in a minute."
                .into(),
        }
    }
}

/// Updates for Ashby that waited for a working key, released when one was saved: how many, and
/// within how many minutes they go out (once every function reads the new key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resent {
    pub count: u32,
    pub within_minutes: u64,
}

impl Resent {
    fn sentence(self) -> String {
        match self.count {
            0 => String::new(),
            1 => format!(
                " One result that could not reach Ashby before goes there within {} minute(s).",
                self.within_minutes
            ),
            n => format!(
                " {n} results that could not reach Ashby before go there within {} minute(s).",
                self.within_minutes
            ),
        }
    }
}

/// The key as pasted, or why it cannot be a key.
pub fn pasted_key(raw: &str) -> Result<SecretString, ConnectError> {
    let key = raw.trim();
    if key.is_empty() {
        return Err(ConnectError::BadKey("Paste your Ashby API key first."));
    }
    if key.len() > MAX_KEY_LEN || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConnectError::BadKey(
            "That does not look like an Ashby API key: paste the key alone, without spaces.",
        ));
    }
    Ok(SecretString::from(key.to_owned()))
}

/// Checks a pasted key with Ashby (`apiKey.info`) and stores it in the secret store when it can
/// write results. A refused key counts as a failed attempt.
pub async fn save_key(
    app: &App,
    opened: &Opened,
    key: &SecretString,
    source: &Source,
) -> Result<KeySaved, ConnectError> {
    let tenant = &opened.account.tenant;
    let info = app.ats.check_key(tenant, key).await;
    let (title, verified) = match info {
        KeyInfo::Scopes { title, scopes } => {
            if !scopes.iter().any(|s| s == CANDIDATES_WRITE) {
                tracing::info!("a pasted Ashby key lacks candidates:write; not stored");
                return Ok(KeySaved::MissingPermission);
            }
            (title, true)
        }
        KeyInfo::CannotReadScopes => (String::new(), false),
        KeyInfo::Refused(status) => {
            tracing::info!(status, "Ashby refused a pasted key; not stored");
            fail(app, source, Some(&opened.hash), "key_refused").await;
            return Ok(KeySaved::Refused);
        }
        KeyInfo::Unavailable(why) => {
            tracing::warn!(
                detail = why.as_str(),
                "Ashby unreachable checking a pasted key"
            );
            return Ok(KeySaved::Unreachable);
        }
    };
    if let Err(e) = app.keys.put_ashby_key(&tenant.id, key).await {
        tracing::warn!(error = %e, "could not store a pasted Ashby key");
        return Err(ConnectError::Store(StoreError::Unavailable(
            "the secret store".into(),
        )));
    }
    let label = key_label(&title, key);
    let check = KeyCheck {
        at_ms: app.clock.now(),
        label: label.clone(),
        scopes_verified: verified,
    };
    app.store.record_key_check(&tenant.id, &check).await?;
    let resent = release_parked(app, opened).await;
    tracing::info!(
        verified,
        resent = resent.count,
        "stored the tenant's Ashby API key from the connect page"
    );
    Ok(if verified {
        KeySaved::Stored { label, resent }
    } else {
        KeySaved::StoredUnverified { label, resent }
    })
}

/// Releases the tenant's parked updates for Ashby now that a key is saved: at once if there was
/// no key before (a missing key is never cached), else once the functions' cached copies of the
/// old key have expired (`HUB_SECRET_CACHE_SECONDS`), so that they go out with the new one. A
/// failure leaves them parked for an operator and does not undo the save.
async fn release_parked(app: &App, opened: &Opened) -> Resent {
    let wait = if opened.key_stored {
        app.config.secret_cache_ttl
    } else {
        Duration::ZERO
    };
    let due = app.clock.now() + wait;
    match super::deliver::release_parked_for_tenant(app, &opened.account.tenant.id, due).await {
        Ok(count) => Resent {
            count,
            // Plus the minute until the next scheduled delivery run.
            within_minutes: wait.as_secs().div_ceil(60) + 1,
        },
        Err(e) => {
            tracing::warn!(error = %e, "could not release parked deliveries after a new key");
            Resent::default()
        }
    }
}
