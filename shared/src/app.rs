//! The wiring: configuration, the ports the use cases work over (store, ATS and vendor gateways,
//! clock) and their HTTP clients, built once per cold start and lent to every request. Nothing in
//! here is mutable except the adapters' own caches.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::ats::ashby::{AshbyClient, AshbyGateway};
use crate::ats::greenhouse::{AtsPatch, GreenhouseClient};
use crate::ats::{AtsError, AtsGateway};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::ports::Store;
use crate::secrets::{
    CachedSecrets, KeyVault, SecretAdmin, SecretNames, SecretSource, SecretsManagerSource,
};
use crate::store::DynamoDbStore;
use crate::transport::SdkTransport;
use crate::vendors::url_policy::LoopbackHttp;
use crate::vendors::{SignedProtocol, VendorClient, VendorGateway};
use crate::waits::WaitInterceptor;

/// How long a new connection to AWS, a vendor or Ashby may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Sent on every outbound call; Ashby's edge is reported to refuse requests without one.
pub const USER_AGENT: &str = concat!(
    "ashby-assessment-hub/",
    env!("CARGO_PKG_VERSION"),
    " (+https://github.com/ashby-assessment-hub)"
);

/// The Greenhouse port of an app wired port by port without one: nothing can be sent.
struct NoGreenhouse;

#[async_trait::async_trait]
impl AtsPatch for NoGreenhouse {
    async fn patch(&self, _: &crate::domain::Tenant, _: &str) -> Result<(), AtsError> {
        Err(AtsError::NoCredentials)
    }
}

/// The ports the use cases work over, and the settings they read. Built once per process.
pub struct App {
    pub config: Config,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) ats: Arc<dyn AtsGateway>,
    /// Greenhouse's `PATCH`es.
    pub(crate) greenhouse: Arc<dyn AtsPatch>,
    pub(crate) vendors: Arc<dyn VendorGateway>,
    pub(crate) clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// Tenants' Ashby API keys for the connect page (writable in the connect function only).
    pub(crate) keys: Arc<KeyVault>,
}

impl App {
    /// Wires an app over the given store and secrets, with Ashby and the signed vendor protocol
    /// as the gateways and the system clock.
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        secrets: Arc<dyn SecretSource>,
    ) -> anyhow::Result<Self> {
        Self::with_clock(config, store, secrets, Arc::new(SystemClock))
    }

    /// As [`App::new`], reading the time from `clock` (tests set it).
    pub fn with_clock(
        config: Config,
        store: Arc<dyn Store>,
        secrets: Arc<dyn SecretSource>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let http = crate::transport::http_client(CONNECT_TIMEOUT)?;
        Ok(Self::wire(config, store, secrets, clock, http))
    }

    /// The gateways over one HTTP client (the production wiring shares it with the AWS SDK).
    fn wire(
        config: Config,
        store: Arc<dyn Store>,
        secrets: Arc<dyn SecretSource>,
        clock: Arc<dyn Clock>,
        http: reqwest::Client,
    ) -> Self {
        let names = SecretNames::new(config.secret_prefix.clone());
        let metrics = Arc::new(Metrics::from_env());
        let ashby = AshbyClient::new(
            http.clone(),
            USER_AGENT,
            config.ashby_timeout,
            config.ashby_version.clone(),
            metrics.clone(),
        );
        let loopback = if config.allow_insecure_loopback {
            LoopbackHttp::Allow
        } else {
            LoopbackHttp::Refuse
        };
        let ashby = ashby.with_loopback(loopback);
        let greenhouse = GreenhouseClient::new(
            http.clone(),
            USER_AGENT,
            config.ashby_timeout,
            loopback,
            secrets.clone(),
            names.clone(),
        );
        let vendor_client = VendorClient::new(
            http,
            USER_AGENT,
            config.vendor_timeout,
            loopback,
            clock.clone(),
        );
        Self {
            ats: Arc::new(AshbyGateway::new(ashby, secrets.clone(), names.clone())),
            greenhouse: Arc::new(greenhouse),
            keys: Arc::new(KeyVault::read_only(secrets.clone(), names.clone())),
            vendors: Arc::new(SignedProtocol::new(vendor_client, secrets, names)),
            config,
            store,
            clock,
            metrics,
        }
    }

    /// An app over ports given one by one: tests that replace a gateway with a fake.
    pub fn from_ports(
        config: Config,
        store: Arc<dyn Store>,
        ats: Arc<dyn AtsGateway>,
        vendors: Arc<dyn VendorGateway>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            greenhouse: Arc::new(NoGreenhouse),
            keys: Arc::new(KeyVault::read_only(
                Arc::new(crate::secrets::StaticSecrets::new()),
                SecretNames::new(config.secret_prefix.clone()),
            )),
            config,
            store,
            ats,
            vendors,
            clock,
            metrics: Arc::new(Metrics::from_env()),
        }
    }

    /// Lets the connect page store the Ashby API keys customers paste (the local hub, tests; the
    /// Lambda wiring does it itself).
    pub fn with_secret_writer(mut self, secrets: Arc<dyn SecretAdmin>) -> Self {
        self.keys = Arc::new(KeyVault::writable(
            secrets,
            SecretNames::new(self.config.secret_prefix.clone()),
        ));
        self
    }

    /// Replaces the Greenhouse `PATCH` port (tests).
    pub fn with_greenhouse(mut self, greenhouse: Arc<dyn AtsPatch>) -> Self {
        self.greenhouse = greenhouse;
        self
    }

    /// The clock the use cases read.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// The production wiring in a Lambda function: DynamoDB and a cached Secrets Manager, set up
    /// from the variables Lambda sets (see [`LambdaAws`]).
    pub async fn from_env() -> anyhow::Result<Self> {
        let config = Config::from_env()?;
        let table = config.require_table()?.to_owned();
        let aws = LambdaAws::from_env(|k| std::env::var(k).ok())?;
        // One HTTP client for everything (crate::transport): the SDK gets it as its transport.
        let http = crate::transport::http_client(CONNECT_TIMEOUT)?;
        let transport = SdkTransport::new(http.clone());
        let mut sdk = aws_types::SdkConfig::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new(aws.region))
            .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
                aws.credentials,
            ))
            .timeout_config(aws_timeouts(&config))
            .retry_config(aws_retries())
            .http_client(transport);
        sdk.set_endpoint_url(aws.endpoint_url);
        let sdk = sdk.build();
        // Each SDK call's time on the wire is waiting, not the hub's own time (crate::waits).
        let dynamodb = aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(WaitInterceptor)
            .build();
        let secrets_manager = aws_sdk_secretsmanager::config::Builder::from(&sdk)
            .interceptor(WaitInterceptor)
            .build();
        let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::from_conf(dynamodb), table);
        let secrets = Arc::new(CachedSecrets::new(
            SecretsManagerSource::new(aws_sdk_secretsmanager::Client::from_conf(secrets_manager)),
            config.secret_cache_ttl,
        ));
        // Only the connect function's role may put a secret (tenants' Ashby keys); the others
        // are refused by IAM if they ever tried.
        Ok(Self::wire(
            config,
            Arc::new(store),
            secrets.clone(),
            Arc::new(SystemClock),
            http,
        )
        .with_secret_writer(secrets))
    }
}

/// Each attempt at a DynamoDB or Secrets Manager call is given up after
/// `HUB_AWS_ATTEMPT_TIMEOUT_MS`, so that a stuck connection answers the caller with a 503 in
/// seconds (`retry::aws_call_budget`) instead of holding the function until its timeout.
/// Shared with hub-local's aws-config wiring.
pub fn aws_timeouts(config: &Config) -> aws_smithy_types::timeout::TimeoutConfig {
    aws_smithy_types::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(config.aws_attempt_timeout)
        .build()
}

/// The SDK's standard retry (what `BehaviorVersion::latest()` gives), written out so that the
/// attempt count the budget assumes is the one in force; a timed-out attempt is retried.
pub fn aws_retries() -> aws_smithy_types::retry::RetryConfig {
    aws_smithy_types::retry::RetryConfig::standard()
        .with_max_attempts(crate::retry::AWS_SDK_ATTEMPTS)
}

/// What the AWS SDK needs in a Lambda function, from the variables Lambda sets: the region and
/// the execution role's credentials (in the environment for the life of the instance), and
/// `AWS_ENDPOINT_URL` if set (how the tests point the functions at an emulator). aws-config's
/// provider chains (profiles, SSO, STS, instance metadata) have nothing to add there; leaving it
/// out saves most of the AWS set-up of a cold start and keeps the STS client out of the binaries
/// (docs/performance.md). hub-local and hubctl, which run on engineers' machines, use aws-config.
#[derive(Debug)]
struct LambdaAws {
    region: String,
    credentials: aws_sdk_dynamodb::config::Credentials,
    endpoint_url: Option<String>,
}

impl LambdaAws {
    fn from_env(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let set = |k: &str| var(k).filter(|v| !v.is_empty());
        let region = set("AWS_REGION")
            .or_else(|| set("AWS_DEFAULT_REGION"))
            .context("AWS_REGION is not set (Lambda sets it)")?;
        let (Some(key), Some(secret)) = (set("AWS_ACCESS_KEY_ID"), set("AWS_SECRET_ACCESS_KEY"))
        else {
            anyhow::bail!(
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set (Lambda sets them from \
                 the function's role)"
            );
        };
        Ok(Self {
            region,
            credentials: aws_sdk_dynamodb::config::Credentials::new(
                key,
                secret,
                set("AWS_SESSION_TOKEN"),
                None,
                "lambda-environment",
            ),
            endpoint_url: set("AWS_ENDPOINT_URL"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_sdk_settings_come_from_the_variables_lambda_sets() {
        let aws = LambdaAws::from_env(vars(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
        ]))
        .expect("settings");
        assert_eq!(aws.region, "eu-west-1");
        assert_eq!(aws.credentials.access_key_id(), "AKIAEXAMPLE");
        assert_eq!(aws.credentials.session_token(), Some("token"));
        assert_eq!(aws.endpoint_url, None);

        let local = LambdaAws::from_env(vars(&[
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_SESSION_TOKEN", ""),
        ]))
        .expect("settings");
        assert_eq!(local.region, "us-east-1");
        assert_eq!(local.credentials.session_token(), None);
        assert_eq!(local.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
    }

    #[test]
    fn missing_region_or_credentials_fail_the_cold_start_with_what_is_missing() {
        let no_region = LambdaAws::from_env(vars(&[
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "b"),
        ]));
        assert!(format!("{:#}", no_region.expect_err("no region")).contains("AWS_REGION"));
        let no_secret = LambdaAws::from_env(vars(&[
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "a"),
        ]));
        assert!(
            format!("{:#}", no_secret.expect_err("no secret key"))
                .contains("AWS_SECRET_ACCESS_KEY")
        );
    }
}
