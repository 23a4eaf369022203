//! The secret-source port: tenants' Ashby API keys and vendors' signing secrets, by name.
//! `CachedSecrets` wraps any source with a per-process TTL cache so that a warm request makes no
//! Secrets Manager call. Values are `SecretString`s: their `Debug` prints `[REDACTED]`.

pub mod aws;

use std::collections::HashMap;
use std::sync::Mutex;
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

#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The secret named `name`. `NotFound` if it does not exist.
    async fn get(&self, name: &str) -> Result<SecretVersions, SecretError>;
    /// Stores a new current value; the old current becomes the previous one.
    async fn put(&self, name: &str, value: &SecretString) -> Result<(), SecretError>;
}

/// How secrets are named: `<prefix>tenants/<id>/ashby-api-key`, `<prefix>vendors/<id>/signing-secret`.
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
    pub fn signing_secret(&self, vendor: &VendorId) -> String {
        format!("{}vendors/{vendor}/signing-secret", self.prefix)
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
    async fn get(&self, name: &str) -> Result<SecretVersions, SecretError> {
        self.values
            .lock()
            .map_err(|_| SecretError::Unavailable("lock poisoned".into()))?
            .get(name)
            .cloned()
            .ok_or_else(|| SecretError::NotFound(name.to_owned()))
    }

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
/// embeds the tenant or vendor id, so one tenant's key can never answer for another's.
pub struct CachedSecrets<S> {
    inner: S,
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, SecretVersions)>>,
}

impl<S: SecretSource> CachedSecrets<S> {
    pub fn new(inner: S, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, name: &str) -> Option<SecretVersions> {
        let m = self.entries.lock().ok()?;
        m.get(name)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }
}

#[async_trait]
impl<S: SecretSource> SecretSource for CachedSecrets<S> {
    async fn get(&self, name: &str) -> Result<SecretVersions, SecretError> {
        if let Some(v) = self.cached(name) {
            return Ok(v);
        }
        let v = self.inner.get(name).await?;
        if let Ok(mut m) = self.entries.lock() {
            m.insert(name.to_owned(), (Instant::now(), v.clone()));
        }
        Ok(v)
    }

    async fn put(&self, name: &str, value: &SecretString) -> Result<(), SecretError> {
        self.inner.put(name, value).await?;
        if let Ok(mut m) = self.entries.lock() {
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

    struct Counting(StaticSecrets, AtomicUsize);

    #[async_trait]
    impl SecretSource for Counting {
        async fn get(&self, name: &str) -> Result<SecretVersions, SecretError> {
            self.1.fetch_add(1, Ordering::SeqCst);
            self.0.get(name).await
        }
        async fn put(&self, name: &str, value: &SecretString) -> Result<(), SecretError> {
            self.0.put(name, value).await
        }
    }

    #[tokio::test]
    async fn a_warm_read_makes_no_call_to_the_source() {
        let c = CachedSecrets::new(
            Counting(StaticSecrets::new(), AtomicUsize::new(0)),
            Duration::from_secs(60),
        );
        c.put("a", &SecretString::from("one")).await.expect("put");
        assert_eq!(
            c.get("a").await.expect("get").current.expose_secret(),
            "one"
        );
        assert_eq!(
            c.get("a").await.expect("get").current.expose_secret(),
            "one"
        );
        assert_eq!(c.inner.1.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_rotated_secret_keeps_its_previous_value() {
        let s = StaticSecrets::new();
        s.put("v", &SecretString::from("old")).await.expect("put");
        s.put("v", &SecretString::from("new")).await.expect("put");
        let v = s.get("v").await.expect("get");
        assert_eq!(v.current.expose_secret(), "new");
        assert_eq!(
            v.previous.map(|p| p.expose_secret().to_owned()),
            Some("old".into())
        );
    }
}
