//! The application: configuration, adapters and HTTP clients, built once per cold start and lent
//! to every request. Nothing in here is mutable except the adapters' own caches.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::ashby::AshbyClient;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::secrets::{CachedSecrets, SecretNames, SecretSource, SecretsManagerSource};
use crate::store::{DynamoDbStore, Store};
use crate::transport::SdkTransport;
use crate::vendor::VendorClient;
use crate::vendor::url_policy::LoopbackHttp;
use crate::waits::WaitInterceptor;

/// How long a new connection to AWS, a vendor or Ashby may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Sent on every outbound call; Ashby's edge is reported to refuse requests without one.
pub const USER_AGENT: &str = concat!(
    "ashby-assessment-hub/",
    env!("CARGO_PKG_VERSION"),
    " (+https://github.com/ashby-assessment-hub)"
);

pub struct App {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub secrets: Arc<dyn SecretSource>,
    pub names: SecretNames,
    pub ashby: AshbyClient,
    pub vendors: VendorClient,
    pub metrics: Metrics,
}

impl App {
    /// Wires an app over the given adapters.
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        secrets: Arc<dyn SecretSource>,
    ) -> anyhow::Result<Self> {
        Self::with_http(
            config,
            store,
            secrets,
            crate::transport::http_client(CONNECT_TIMEOUT)?,
        )
    }

    /// As [`App::new`], with the HTTP client for vendors and Ashby given (the production wiring
    /// shares it with the AWS SDK).
    fn with_http(
        config: Config,
        store: Arc<dyn Store>,
        secrets: Arc<dyn SecretSource>,
        http: reqwest::Client,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            names: SecretNames::new(config.secret_prefix.clone()),
            ashby: AshbyClient::new(http.clone(), USER_AGENT, config.ashby_timeout),
            vendors: VendorClient::new(
                http,
                USER_AGENT,
                config.vendor_timeout,
                config.vendor_attempts,
                config.vendor_backoff,
                if config.allow_insecure_loopback {
                    LoopbackHttp::Allow
                } else {
                    LoopbackHttp::Refuse
                },
            ),
            config,
            store,
            secrets,
            metrics: Metrics::from_env(),
        })
    }

    /// The production wiring: DynamoDB and a cached Secrets Manager, from the usual AWS
    /// environment (`AWS_ENDPOINT_URL` included, which is how tests point it at an emulator).
    pub async fn from_env() -> anyhow::Result<Self> {
        let config = Config::from_env()?;
        let table = config.require_table()?.to_owned();
        // One HTTP client for everything (crate::transport): the SDK gets it as its transport.
        let http = crate::transport::http_client(CONNECT_TIMEOUT)?;
        let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(SdkTransport::new(http.clone()))
            .load()
            .await;
        // Each SDK call's time on the wire is waiting, not the hub's own time (crate::waits).
        let dynamodb = aws_sdk_dynamodb::config::Builder::from(&aws)
            .interceptor(WaitInterceptor)
            .build();
        let secrets_manager = aws_sdk_secretsmanager::config::Builder::from(&aws)
            .interceptor(WaitInterceptor)
            .build();
        let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::from_conf(dynamodb), table);
        let secrets = CachedSecrets::new(
            SecretsManagerSource::new(aws_sdk_secretsmanager::Client::from_conf(secrets_manager)),
            config.secret_cache_ttl,
        );
        Self::with_http(config, Arc::new(store), Arc::new(secrets), http)
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
