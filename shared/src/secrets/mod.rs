//! The secret ports: tenants' Ashby API keys and vendors' signing secrets, by name. Split by
//! caller: [`SecretSource`] is what the functions read; [`SecretAdmin`] adds the `put` that only
//! operators (hubctl, the local hub loading its registry) make. `CachedSecrets` wraps any source
//! with a per-process TTL cache so that a warm request makes no Secrets Manager call. Values are
//! `SecretString`s: their `Debug` prints `[REDACTED]`.

pub mod aws;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::SecretString;

use crate::domain::{TenantId, VendorId};

pub use aws::SecretsManagerSource;

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum SecretError {
    #[error("secret {0} does not exist")]
    NotFound(String),
    #[error("secret store unavailable: {0}")]
    Unavailable(String),
}

/// A secret's current value and, during a rotation, the one it replaced.
#[derive(Clone, Debug)]
pub struct SecretVersions {
    pub current: SecretString,
    pub previous: Option<SecretString>,
}

impl SecretVersions {
    /// Current first, then previous: the order in which signatures are tried.
    pub fn all(&self) -> Vec<SecretString> {
        std::iter::once(self.current.clone())
            .chain(self.previous.clone())
            .collect()
    }
}

/// Reading secrets: what the functions do.
///
/// Contract: both reads are side-effect free and may be repeated. `NotFound` means the secret
/// (or, for [`versions`](Self::versions), its current value) does not exist; `Unavailable`
/// means the store could not be asked or answered unreadably, and is worth retrying later. An
/// error never carries a secret value.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The current value only: an Ashby API key, or a vendor's signing secret to sign with.
    /// One read of the store (Secrets Manager: one `GetSecretValue` of `AWSCURRENT`).
    async fn current(&self, name: &str) -> Result<SecretString, SecretError>;
    /// The current value and, while a rotation is under way, the one it replaced: for verifying
    /// a vendor's signatures, which the previous secret may still make. No previous value is
    /// not an error.
    async fn versions(&self, name: &str) -> Result<SecretVersions, SecretError>;
}

/// Writing secrets: operators only (hubctl; the local hub loading its registry). The functions'
/// IAM role has no write permission, and they are never given this trait.
///
/// Contract: `put` makes `value` the current value, creating the secret if it does not exist;
/// the value it replaced becomes the previous one (what [`SecretSource::versions`] returns
/// beside it). A cache in front of the store forgets both reads of `name`.
#[async_trait]
pub trait SecretAdmin: SecretSource {
    async fn put(&self, name: &str, value: &SecretString) -> Result<(), SecretError>;
}

/// How secrets are named: `<prefix>tenants/<id>/ashby-api-key`,
/// `<prefix>tenants/<id>/greenhouse-partner-key`, `<prefix>vendors/<id>/signing-secret`.
/// IAM grants the functions `GetSecretValue` on `<prefix>*` only.
#[derive(Clone, Debug)]
pub struct SecretNames {
    prefix: String,
}

impl SecretNames {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }
    pub fn ashby_api_key(&self, tenant: &TenantId) -> String {
        format!("{}tenants/{tenant}/ashby-api-key", self.prefix)
    }
    /// A Greenhouse tenant's partner key, which the hub sends back on its `PATCH`es (the
    /// registry holds its hash only).
    pub fn greenhouse_partner_key(&self, tenant: &TenantId) -> String {
        format!("{}tenants/{tenant}/greenhouse-partner-key", self.prefix)
    }
    pub fn signing_secret(&self, vendor: &VendorId) -> String {
        format!("{}vendors/{vendor}/signing-secret", self.prefix)
    }
}

/// Tenants' Ashby API keys as the connect page handles them: whether one is stored, and storing
/// the one a customer pasted. The functions that only read keys get a vault without a writer.
pub struct KeyVault {
    reads: Arc<dyn SecretSource>,
    writes: Option<Arc<dyn SecretAdmin>>,
    names: SecretNames,
}

impl KeyVault {
    pub fn read_only(reads: Arc<dyn SecretSource>, names: SecretNames) -> Self {
        Self {
            reads,
            writes: None,
            names,
        }
    }

    pub fn writable(store: Arc<dyn SecretAdmin>, names: SecretNames) -> Self {
        Self {
            reads: store.clone(),
            writes: Some(store),
            names,
        }
    }

    /// Whether the tenant has an Ashby API key stored.
    pub async fn has_ashby_key(&self, tenant: &TenantId) -> Result<bool, SecretError> {
        match self.reads.current(&self.names.ashby_api_key(tenant)).await {
            Ok(_) => Ok(true),
            Err(SecretError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Makes `key` the tenant's Ashby API key (the one it replaces stays as the previous
    /// version, which nothing reads).
    pub async fn put_ashby_key(
        &self,
        tenant: &TenantId,
        key: &SecretString,
    ) -> Result<(), SecretError> {
        let Some(w) = &self.writes else {
            return Err(SecretError::Unavailable(
                "this process may not write secrets".into(),
            ));
        };
        w.put(&self.names.ashby_api_key(tenant), key).await
    }
}

/// Secrets held in memory: the local hub and tests.
#[derive(Default)]
pub struct StaticSecrets {
    values: Mutex<HashMap<String, SecretVersions>>,
}

impl StaticSecrets {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl SecretSource for StaticSecrets {
    async fn current(&self, name: &str) -> Result<SecretString, SecretError> {
        self.versions(name).await.map(|v| v.current)
    }

    async fn versions(&self, name: &str) -> Result<SecretVersions, SecretError> {
        self.values
            .lock()
            .map_err(|_| SecretError::Unavailable("lock poisoned".into()))?
            .get(name)
            .cloned()
            .ok_or_else(|| SecretError::NotFound(name.to_owned()))
    }
}

#[async_trait]
impl SecretAdmin for StaticSecrets {
    async fn put(&self, name: &str, value: &SecretString) -> Result<(), SecretError> {
        let mut m = self
            .values
            .lock()
            .map_err(|_| SecretError::Unavailable("lock poisoned".into()))?;
        let previous = m.get(name).map(|v| v.current.clone());
        m.insert(
            name.to_owned(),
            SecretVersions {
                current: value.clone(),
                previous,
            },
        );
        Ok(())
    }
}

/// A TTL cache in front of another source. Entries are keyed by the full secret name, which
/// embeds the tenant or vendor id, so one tenant's key can never answer for another's; and
/// current-only and versioned reads are kept apart, so that a current-only read never stands in
/// for a versioned one (it knows no previous value) nor the other way round.
pub struct CachedSecrets<S> {
    inner: S,
    ttl: Duration,
    current: Mutex<HashMap<String, (Instant, SecretString)>>,
    versions: Mutex<HashMap<String, (Instant, SecretVersions)>>,
}

fn fresh<T: Clone>(
    m: &Mutex<HashMap<String, (Instant, T)>>,
    name: &str,
    ttl: Duration,
) -> Option<T> {
    let m = m.lock().ok()?;
    m.get(name)
        .filter(|(at, _)| at.elapsed() < ttl)
        .map(|(_, v)| v.clone())
}

fn remember<T>(m: &Mutex<HashMap<String, (Instant, T)>>, name: &str, value: T) {
    if let Ok(mut m) = m.lock() {
        m.insert(name.to_owned(), (Instant::now(), value));
    }
}

impl<S: SecretSource> CachedSecrets<S> {
    pub fn new(inner: S, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            current: Mutex::new(HashMap::new()),
            versions: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl<S: SecretSource> SecretSource for CachedSecrets<S> {
    async fn current(&self, name: &str) -> Result<SecretString, SecretError> {
        if let Some(v) = fresh(&self.current, name, self.ttl) {
            return Ok(v);
        }
        let v = self.inner.current(name).await?;
        remember(&self.current, name, v.clone());
        Ok(v)
    }

    async fn versions(&self, name: &str) -> Result<SecretVersions, SecretError> {
        if let Some(v) = fresh(&self.versions, name, self.ttl) {
            return Ok(v);
        }
        let v = self.inner.versions(name).await?;
        remember(&self.versions, name, v.clone());
        Ok(v)
    }
}

#[async_trait]
impl<S: SecretAdmin> SecretAdmin for CachedSecrets<S> {
    async fn put(&self, name: &str, value: &SecretString) -> Result<(), SecretError> {
        self.inner.put(name, value).await?;
        if let Ok(mut m) = self.current.lock() {
            m.remove(name);
        }
        if let Ok(mut m) = self.versions.lock() {
            m.remove(name);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the reads that reach the source, by kind.
    #[derive(Default)]
    struct Counting {
        inner: StaticSecrets,
        current: AtomicUsize,
        versions: AtomicUsize,
    }

    #[async_trait]
    impl SecretSource for Counting {
        async fn current(&self, name: &str) -> Result<SecretString, SecretError> {
            self.current.fetch_add(1, Ordering::SeqCst);
            self.inner.current(name).await
        }
        async fn versions(&self, name: &str) -> Result<SecretVersions, SecretError> {
            self.versions.fetch_add(1, Ordering::SeqCst);
            self.inner.versions(name).await
        }
    }

    #[async_trait]
    impl SecretAdmin for Counting {
        async fn put(&self, name: &str, value: &SecretString) -> Result<(), SecretError> {
            self.inner.put(name, value).await
        }
    }

    fn cached() -> CachedSecrets<Counting> {
        CachedSecrets::new(Counting::default(), Duration::from_secs(60))
    }

    #[tokio::test]
    async fn a_warm_read_makes_no_call_to_the_source() {
        let c = cached();
        c.put("a", &SecretString::from("one")).await.expect("put");
        for _ in 0..2 {
            assert_eq!(c.current("a").await.expect("get").expose_secret(), "one");
        }
        assert_eq!(c.inner.current.load(Ordering::SeqCst), 1);
        assert_eq!(c.inner.versions.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn current_and_versioned_reads_are_cached_apart() {
        let c = cached();
        c.put("v", &SecretString::from("old")).await.expect("put");
        c.put("v", &SecretString::from("new")).await.expect("put");
        assert_eq!(c.current("v").await.expect("get").expose_secret(), "new");
        // A cached current value knows no previous one: the versioned read asks the source.
        let v = c.versions("v").await.expect("get");
        assert_eq!(v.previous.expect("previous").expose_secret(), "old");
        c.versions("v").await.expect("get");
        c.current("v").await.expect("get");
        assert_eq!(c.inner.current.load(Ordering::SeqCst), 1);
        assert_eq!(c.inner.versions.load(Ordering::SeqCst), 1);
        // A put forgets both.
        c.put("v", &SecretString::from("newer")).await.expect("put");
        assert_eq!(c.current("v").await.expect("get").expose_secret(), "newer");
        let v = c.versions("v").await.expect("get");
        assert_eq!(v.previous.expect("previous").expose_secret(), "new");
    }

    #[tokio::test]
    async fn a_rotated_secret_keeps_its_previous_value() {
        let s = StaticSecrets::new();
        s.put("v", &SecretString::from("old")).await.expect("put");
        s.put("v", &SecretString::from("new")).await.expect("put");
        let v = s.versions("v").await.expect("get");
        assert_eq!(v.current.expose_secret(), "new");
        assert_eq!(
            v.previous.map(|p| p.expose_secret().to_owned()),
            Some("old".into())
        );
    }
}
