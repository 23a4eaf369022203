//! The local hub: what the five Lambda functions run (the four request handlers behind the same
//! routes as API Gateway, and the scheduled delivery run in-process), plus the sandbox vendor and
//! the Ashby stand-in, on one loopback port. State is in memory by default, or in DynamoDB and
//! Secrets Manager when a table is named.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Body as AxumBody;
use axum::response::{IntoResponse, Response};
use hub::domain::TokenHash;
use hub::error::ApiError;
use hub::handlers::{MAX_BODY_BYTES, Route};
use hub::ports::AdminStore;
use hub::secrets::{
    CachedSecrets, SecretAdmin, SecretNames, SecretSource, SecretsManagerSource, StaticSecrets,
};
use hub::store::{DynamoDbStore, MemoryStore};
use hub::{App, Config};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::oneshot;
use url::Url;

use crate::ashby_standin::AshbyStandIn;
use crate::config::{DEMO_GREENHOUSE_KEY, DEMO_TOKEN, LocalConfig};
use crate::greenhouse_standin::GreenhouseStandIn;
use crate::sandbox::Sandbox;

#[derive(Debug, Clone)]
pub struct Options {
    /// 0 picks a free port.
    pub port: u16,
    pub config: Option<PathBuf>,
    pub public_url: Option<Url>,
    /// DynamoDB table (with the usual AWS variables); memory when `None`.
    pub table: Option<String>,
    /// Pause between the sandbox vendor's steps.
    pub sandbox_delay: Duration,
    /// Print nothing per request (tests).
    pub quiet: bool,
    /// Hub settings; read from the environment (`HUB_*`) when `None`.
    pub hub_config: Option<Config>,
    /// How often the delivery queue is retried (the Lambda deployment's schedule, in-process).
    pub retry_interval: Duration,
    /// How long the connect links of tenants awaiting connection work.
    pub connect_link_valid: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            port: 8000,
            config: None,
            public_url: None,
            table: None,
            sandbox_delay: Duration::from_secs(3),
            quiet: false,
            hub_config: None,
            retry_interval: Duration::from_secs(5),
            connect_link_valid: Duration::from_secs(
                u64::from(hub::domain::connect::DEFAULT_INVITE_DAYS) * 86_400,
            ),
        }
    }
}

pub struct RunningHub {
    pub base_url: Url,
    /// The demo tenant's trigger token, when running the built-in demo.
    pub demo_token: Option<String>,
    /// The demo Greenhouse tenant's partner key, when running the built-in demo.
    pub demo_greenhouse_key: Option<String>,
    pub ashby: Arc<AshbyStandIn>,
    /// The Greenhouse stand-in of the demo's Greenhouse tenant (built-in demo only).
    pub greenhouse: Option<Arc<GreenhouseStandIn>>,
    pub app: Arc<App>,
    /// The same store as the app's, with the operator's side (seeding, redelivery).
    pub store: Arc<dyn AdminStore>,
    /// A connect link for each tenant that awaits connection, in the registry's order.
    pub connect_links: Vec<(hub::domain::TenantId, String)>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    retry: tokio::task::JoinHandle<()>,
}

impl RunningHub {
    /// Stops serving and waits for the server task to end.
    pub async fn stop(mut self) {
        self.retry.abort();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Serves until the process is interrupted.
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

pub async fn start(opts: Options) -> anyhow::Result<RunningHub> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], opts.port)))
        .await
        .with_context(|| format!("binding 127.0.0.1:{}", opts.port))?;
    let addr = listener.local_addr()?;
    let base_url = Url::parse(&format!("http://{addr}/"))?;
    let public_url = opts.public_url.clone().unwrap_or_else(|| base_url.clone());

    let sandbox_secret = hub::domain::generate_signing_secret();
    let (registry, demo_token) = match &opts.config {
        Some(path) => (LocalConfig::load(path)?, None),
        None => (
            LocalConfig::demo(&base_url, sandbox_secret.expose_secret())?,
            Some(DEMO_TOKEN.to_owned()),
        ),
    };

    let mut config = match &opts.hub_config {
        Some(c) => c.clone(),
        None => Config::from_env()?,
    };
    config.public_url = Some(public_url);
    // Local vendors (the sandbox, a developer's stub) listen on plain http on loopback.
    config.allow_insecure_loopback = true;
    config.table = opts.table.clone();
    // The local hub is its own operator: it writes the registry and its secrets, then lends the
    // handlers the functions' side only.
    let (store, secrets): (Arc<dyn AdminStore>, Arc<dyn SecretAdmin>) = match &opts.table {
        None => (Arc::new(MemoryStore::new()), Arc::new(StaticSecrets::new())),
        Some(table) => {
            let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .timeout_config(hub::app::aws_timeouts(&config))
                .retry_config(hub::app::aws_retries())
                .load()
                .await;
            let ddb = aws_sdk_dynamodb::Client::new(&aws);
            if ddb.describe_table().table_name(table).send().await.is_err() {
                DynamoDbStore::create_table(&ddb, table)
                    .await
                    .with_context(|| format!("creating table {table}"))?;
            }
            (
                Arc::new(DynamoDbStore::new(ddb, table.clone())),
                Arc::new(CachedSecrets::new(
                    SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&aws)),
                    config.secret_cache_ttl,
                )),
            )
        }
    };
    let names = SecretNames::new(config.secret_prefix.clone());
    let reads: Arc<dyn SecretSource> = secrets.clone();
    let app = Arc::new(App::new(config, store.clone(), reads)?.with_secret_writer(secrets.clone()));
    load_registry(store.as_ref(), secrets.as_ref(), &names, &registry).await?;
    let connect_links = connect_links(
        store.as_ref(),
        &registry,
        &base_url,
        app.clock().now(),
        opts.connect_link_valid,
    )
    .await?;

    let ashby = Arc::new(AshbyStandIn::new(
        base_url.join("ashby")?.as_str(),
        registry
            .tenants
            .iter()
            .filter(|t| t.ats == hub::domain::Ats::Ashby)
            .map(|t| t.ashby_api_key.clone()),
        opts.quiet,
    )?);
    let mut router = axum::Router::new()
        .fallback(hub_route)
        .with_state(app.clone())
        .merge(ashby.clone().router());
    let mut greenhouse = None;
    if opts.config.is_none() {
        let standin = Arc::new(GreenhouseStandIn::new(
            base_url.clone(),
            DEMO_GREENHOUSE_KEY.to_owned(),
            opts.quiet,
        )?);
        router = router.merge(standin.clone().router());
        greenhouse = Some(standin);
        let sandbox = Arc::new(Sandbox::new(
            sandbox_secret.expose_secret(),
            base_url.clone(),
            opts.sandbox_delay,
            opts.quiet,
        )?);
        router = router.merge(sandbox.router());
    }

    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, router).with_graceful_shutdown(async {
            let _ = rx.await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "local hub stopped");
        }
    });
    let retry = tokio::spawn(retry_loop(app.clone(), opts.retry_interval));
    Ok(RunningHub {
        base_url,
        demo_greenhouse_key: greenhouse.as_ref().map(|_| DEMO_GREENHOUSE_KEY.to_owned()),
        demo_token,
        ashby,
        greenhouse,
        app,
        store,
        connect_links,
        shutdown: Some(tx),
        task,
        retry,
    })
}

/// The scheduled delivery run, in-process: what EventBridge does for the Lambda deployment.
async fn retry_loop(app: Arc<App>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let budget = interval.max(Duration::from_secs(30));
        if let Err(e) = hub::usecases::deliver::run_due(&app, 500, budget).await {
            tracing::warn!(error = %e, "scheduled delivery run failed");
        }
    }
}

async fn load_registry(
    store: &dyn AdminStore,
    secrets: &dyn SecretAdmin,
    names: &SecretNames,
    registry: &LocalConfig,
) -> anyhow::Result<()> {
    for v in registry.vendor_records() {
        store.put_vendor(&v).await?;
    }
    for v in &registry.vendors {
        secrets
            .put(
                &names.signing_secret(&v.id),
                &SecretString::from(v.signing_secret.clone()),
            )
            .await?;
    }
    for t in &registry.tenants {
        if t.awaits_connection() {
            // Kept as it is when the table already holds it (a restart must not disconnect it).
            store
                .create_tenant_awaiting(&LocalConfig::tenant_record(t))
                .await?;
            continue;
        }
        let token = SecretString::from(t.trigger_token.clone());
        store
            .put_tenant(&LocalConfig::tenant_record(t), &TokenHash::of(&token))
            .await?;
        match t.ats {
            hub::domain::Ats::Ashby => {
                secrets
                    .put(
                        &names.ashby_api_key(&t.id),
                        &SecretString::from(t.ashby_api_key.clone()),
                    )
                    .await?
            }
            // The partner key goes back to Greenhouse on every PATCH: kept as a secret too.
            hub::domain::Ats::Greenhouse => {
                secrets
                    .put(&names.greenhouse_partner_key(&t.id), &token)
                    .await?
            }
        }
    }
    Ok(())
}

/// A fresh connect link (`<base>connect/<code>`) for every tenant that awaits connection, as
/// `hubctl tenant invite` makes them. The codes are printed once and kept nowhere else.
async fn connect_links(
    store: &dyn AdminStore,
    registry: &LocalConfig,
    base: &Url,
    now: hub::clock::Timestamp,
    valid: Duration,
) -> anyhow::Result<Vec<(hub::domain::TenantId, String)>> {
    let mut links = Vec::new();
    for t in registry.tenants.iter().filter(|t| t.awaits_connection()) {
        let code = hub::domain::connect::generate_connect_code();
        let invite = hub::domain::Invite {
            hash: TokenHash::of(&code),
            tenant_id: t.id.clone(),
            created_at_ms: now,
            expires_at_ms: now + valid,
            revoked_at_ms: None,
            token_shown_at_ms: None,
        };
        store.create_invite(&invite).await?;
        let url = base.join(&format!("connect/{}", code.expose_secret()))?;
        links.push((t.id.clone(), url.to_string()));
    }
    Ok(links)
}

/// API Gateway's part: route by path, cap the body, hand the request to the function's handler.
async fn hub_route(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
    req: axum::extract::Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let Some(route) = Route::of(parts.uri.path()) else {
        return to_axum(
            ApiError::NotFound {
                code: "not_found",
                message: "no such route".into(),
            }
            .into_response(None),
        );
    };
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => return to_axum(ApiError::PayloadTooLarge(MAX_BODY_BYTES).into_response(None)),
    };
    let req = http::Request::from_parts(parts, lambda_http::Body::from(bytes.to_vec()));
    to_axum(route.serve(&app, req).await)
}

fn to_axum(resp: lambda_http::Response<lambda_http::Body>) -> Response {
    let (parts, body) = resp.into_parts();
    let body = match body {
        lambda_http::Body::Text(t) => AxumBody::from(t),
        lambda_http::Body::Binary(b) => AxumBody::from(b),
        _ => AxumBody::empty(),
    };
    Response::from_parts(parts, body).into_response()
}
