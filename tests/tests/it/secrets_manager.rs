//! `SecretsManagerSource` against the Secrets Manager wire protocol (moto): reads, writes,
//! rotation, a missing secret, how many calls each kind of read makes, and the cache in front of
//! it (counted on the wire).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_secretsmanager::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_secretsmanager::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_secretsmanager::error::BoxError;
use hub::secrets::{CachedSecrets, SecretAdmin, SecretError, SecretSource, SecretsManagerSource};
use secrecy::{ExposeSecret, SecretString};

async fn source() -> SecretsManagerSource {
    let sdk = hub_tests::aws::sdk_config().await;
    SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&sdk))
}

/// A name no other test uses, shaped like the hub's own names.
fn name() -> String {
    format!("test-{}/vendors/acme/signing-secret", uuid::Uuid::new_v4())
}

fn exposed(s: &SecretString) -> &str {
    s.expose_secret()
}

#[tokio::test]
async fn a_new_secret_is_created_and_read_back_without_a_previous_value() {
    let (secrets, name) = (source().await, name());
    secrets
        .put(&name, &SecretString::from("whsec_one"))
        .await
        .unwrap();
    let v = secrets.versions(&name).await.unwrap();
    assert_eq!(exposed(&v.current), "whsec_one");
    assert!(v.previous.is_none());
    assert_eq!(exposed(&secrets.current(&name).await.unwrap()), "whsec_one");
}

#[tokio::test]
async fn a_rotated_secret_keeps_its_previous_value_for_verification() {
    let (secrets, name) = (source().await, name());
    secrets
        .put(&name, &SecretString::from("old"))
        .await
        .unwrap();
    secrets
        .put(&name, &SecretString::from("new"))
        .await
        .unwrap();
    let v = secrets.versions(&name).await.unwrap();
    assert_eq!(exposed(&v.current), "new");
    assert_eq!(v.previous.as_ref().map(exposed), Some("old"));
    let all: Vec<String> = v.all().iter().map(|s| exposed(s).to_owned()).collect();
    assert_eq!(all, ["new", "old"]);
    // A second rotation drops the oldest value.
    secrets
        .put(&name, &SecretString::from("newest"))
        .await
        .unwrap();
    let v = secrets.versions(&name).await.unwrap();
    assert_eq!(exposed(&v.current), "newest");
    assert_eq!(v.previous.as_ref().map(exposed), Some("new"));
}

#[tokio::test]
async fn a_missing_secret_is_not_found_by_name() {
    let (secrets, name) = (source().await, name());
    assert_eq!(
        secrets.current(&name).await.unwrap_err(),
        SecretError::NotFound(name.clone())
    );
    assert_eq!(
        secrets.versions(&name).await.unwrap_err(),
        SecretError::NotFound(name)
    );
}

#[tokio::test]
async fn an_unreachable_secrets_manager_is_unavailable_and_never_echoes_the_value() {
    // Nothing listens on port 9 of loopback.
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url("http://127.0.0.1:9")
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "hub-tests",
        ))
        .load()
        .await;
    let secrets = SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&sdk));
    let err = secrets
        .put(&name(), &SecretString::from("whsec_do-not-print"))
        .await
        .unwrap_err();
    assert!(matches!(err, SecretError::Unavailable(_)), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("do-not-print"));
    assert!(matches!(
        secrets.current(&name()).await,
        Err(SecretError::Unavailable(_))
    ));
    assert!(matches!(
        secrets.versions(&name()).await,
        Err(SecretError::Unavailable(_))
    ));
}

/// Counts the GetSecretValue requests that actually go out on the wire.
#[derive(Debug)]
struct CountGets(Arc<AtomicUsize>);

impl Intercept for CountGets {
    fn name(&self) -> &'static str {
        "CountGets"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context.request().headers().get("x-amz-target");
        if target == Some("secretsmanager.GetSecretValue") {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// A source whose GetSecretValue requests are counted as they go out.
async fn counted() -> (SecretsManagerSource, Arc<AtomicUsize>) {
    let gets = Arc::new(AtomicUsize::new(0));
    let sdk = hub_tests::aws::sdk_config().await;
    let config = aws_sdk_secretsmanager::config::Builder::from(&sdk)
        .interceptor(CountGets(gets.clone()))
        .build();
    (
        SecretsManagerSource::new(aws_sdk_secretsmanager::Client::from_conf(config)),
        gets,
    )
}

#[tokio::test]
async fn a_current_only_read_makes_one_call_even_during_a_rotation() {
    let (secrets, gets) = counted().await;
    let name = name();
    secrets
        .put(&name, &SecretString::from("old"))
        .await
        .unwrap();
    secrets
        .put(&name, &SecretString::from("new"))
        .await
        .unwrap();
    assert_eq!(exposed(&secrets.current(&name).await.unwrap()), "new");
    assert_eq!(gets.load(Ordering::SeqCst), 1, "AWSCURRENT only");
    let v = secrets.versions(&name).await.unwrap();
    assert_eq!(v.previous.as_ref().map(exposed), Some("old"));
    assert_eq!(gets.load(Ordering::SeqCst), 3, "AWSCURRENT and AWSPREVIOUS");
}

#[tokio::test]
async fn a_warm_read_through_the_cache_makes_no_second_secrets_manager_call() {
    let (source, gets) = counted().await;
    let cached = CachedSecrets::new(source, Duration::from_secs(300));
    let name = name();
    cached.put(&name, &SecretString::from("one")).await.unwrap();
    assert_eq!(exposed(&cached.current(&name).await.unwrap()), "one");
    assert_eq!(
        gets.load(Ordering::SeqCst),
        1,
        "the cold read went out once"
    );
    assert_eq!(exposed(&cached.current(&name).await.unwrap()), "one");
    assert_eq!(gets.load(Ordering::SeqCst), 1, "the warm read made a call");
    // A versioned read is cached apart: it goes out (twice) once, then not again.
    for _ in 0..2 {
        let v = cached.versions(&name).await.unwrap();
        assert_eq!(exposed(&v.current), "one");
    }
    assert_eq!(gets.load(Ordering::SeqCst), 3);
    // A write through the cache is seen at once, at the cost of one more cold read.
    cached.put(&name, &SecretString::from("two")).await.unwrap();
    assert_eq!(exposed(&cached.current(&name).await.unwrap()), "two");
    assert_eq!(gets.load(Ordering::SeqCst), 4);
}
