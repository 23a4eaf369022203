//! Shared set-up: a hub under test (the local hub in-process, or the compiled Lambda functions
//! under the Runtime API emulator against moto), with a fake Ashby and fake vendors wired in, and
//! a client that speaks to it as Ashby does.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use hub::domain::{Package, PackageId, PackageRef, Tenant, TenantId, TokenHash, Vendor, VendorId};
use hub::ports::AdminStore;
use hub::secrets::{SecretAdmin, SecretsManagerSource};
use hub::store::DynamoDbStore;
use hub_local::openapi::OpenApi;
use hub_local::server::RunningHub;
use hub_tests::fakes::{FakeAshby, FakeGreenhouse, FakeVendor, ashby_openapi, greenhouse_schemas};
use hub_tests::lambda::{FunctionSpec, LambdaHost};
use secrecy::SecretString;
use serde_json::{Value, json};

pub const VENDOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const RIVAL_SECRET: &str = "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=";
pub const CANDIDATE_EMAIL: &str = "ada.lovelace@candidate.example";
pub const CANDIDATE_FIRST: &str = "Adaxyz";
pub const CANDIDATE_LAST: &str = "Lovelacexyz";

/// The fake parties of a fixture: Acme, Rival, Globex's and Initech's Ashby, Hooli's Greenhouse
/// and its partner key.
type Parties = (
    Arc<FakeVendor>,
    Arc<FakeVendor>,
    Arc<FakeAshby>,
    Arc<FakeAshby>,
    Arc<FakeGreenhouse>,
    String,
);

pub enum Host {
    Local(RunningHub),
    Lambda(LambdaHost),
}

/// Everything a test needs: the hub's URL, two tenants, two vendors, a fake Ashby per tenant.
pub struct Fixture {
    pub base_url: String,
    pub host: Host,
    /// Globex: has `acme/criminal-basic` enabled (and not `acme/premium`).
    pub token: String,
    /// Initech: another tenant, with the same package enabled.
    pub other_token: String,
    pub vendor: Arc<FakeVendor>,
    /// A second vendor, Rival, whose assessments Acme must not touch.
    pub rival: Arc<FakeVendor>,
    pub ashby: Arc<FakeAshby>,
    pub other_ashby: Arc<FakeAshby>,
    /// Hooli: a Greenhouse tenant with the same packages; its partner key.
    pub gh_key: String,
    pub greenhouse: Arc<FakeGreenhouse>,
    pub gh_schemas: hub_local::greenhouse_schemas::GreenhouseSchemas,
    pub type_id: String,
    pub disabled_type_id: String,
    pub rival_type_id: String,
    /// `acme/panel`: a package with options (a required choice, an optional text).
    pub panel_type_id: String,
    pub api: OpenApi,
    http: reqwest::Client,
    /// The Lambda deployment's table, for what an operator would do with hubctl.
    table_store: Option<Arc<dyn AdminStore>>,
    /// The Lambda deployment's table name and secret prefix.
    deployment: Option<(String, String)>,
}

fn package(id: &str, name: &str) -> Package {
    Package {
        id: PackageId::parse(id).unwrap(),
        name: name.into(),
        description: format!("{name} (test)"),
        options: vec![],
    }
}

fn pref(s: &str) -> PackageRef {
    PackageRef::parse(s).unwrap()
}

struct Registry {
    vendors: Vec<(Vendor, &'static str)>,
    tenants: Vec<(Tenant, String, String)>,
}

fn registry(
    vendor: &FakeVendor,
    rival: &FakeVendor,
    ashby: &FakeAshby,
    other: &FakeAshby,
    gh_key: &str,
) -> Registry {
    let acme = Vendor {
        id: VendorId::parse("acme").unwrap(),
        name: "Acme Checks".into(),
        order_url: vendor.order_url.parse().unwrap(),
        packages: vec![
            package("criminal-basic", "Criminal record check"),
            package("premium", "Premium check"),
            Package {
                options: serde_json::from_value(json!([
                    {"id": "work_location", "name": "Work location", "type": "ValueSelect",
                     "required": true, "possible_values": [
                        {"key": "us", "value": "United States"}, {"key": "uk", "value": "United Kingdom"}]},
                    {"id": "note", "name": "Note for the provider", "type": "String"}
                ]))
                .unwrap(),
                ..package("panel", "Drug panel")
            },
        ],
    };
    let rival_v = Vendor {
        id: VendorId::parse("rival").unwrap(),
        name: "Rival Tests".into(),
        order_url: rival.order_url.parse().unwrap(),
        packages: vec![package("coding", "Coding test")],
    };
    let tenant = |id: &str, ashby: &FakeAshby| Tenant {
        id: TenantId::parse(id).unwrap(),
        name: id.to_uppercase(),
        ats: hub::domain::Ats::Ashby,
        ashby_base_url: ashby.base_url.parse().unwrap(),
        packages: vec![
            pref("acme/criminal-basic"),
            pref("rival/coding"),
            pref("acme/panel"),
        ],
        disabled: false,
    };
    Registry {
        vendors: vec![(acme, VENDOR_SECRET), (rival_v, RIVAL_SECRET)],
        tenants: vec![
            (
                tenant("globex", ashby),
                format!("globex-token-{}", uuid::Uuid::new_v4()),
                "globex-ashby-key".into(),
            ),
            (
                tenant("initech", other),
                format!("initech-token-{}", uuid::Uuid::new_v4()),
                "initech-ashby-key".into(),
            ),
            (
                Tenant {
                    ats: hub::domain::Ats::Greenhouse,
                    ashby_base_url: "https://api.ashbyhq.com".parse().unwrap(),
                    ..tenant("hooli", other)
                },
                gh_key.to_owned(),
                String::new(),
            ),
        ],
    }
}

/// The Greenhouse tenant's partner key (unique per fixture; the fake Greenhouse checks it).
fn new_gh_key() -> String {
    format!("hooli-gh-{}", uuid::Uuid::new_v4().simple())
}

/// Short vendor timeouts so failure tests take seconds, not minutes.
pub fn fast_env() -> Vec<(String, String)> {
    [
        ("HUB_VENDOR_TIMEOUT_MS", "1500"),
        ("HUB_VENDOR_ATTEMPTS", "2"),
        ("HUB_VENDOR_BACKOFF_MS", "50"),
        ("HUB_ASHBY_TIMEOUT_MS", "2000"),
        // Retries become due within a tick of the tests' clock.
        ("HUB_RETRY_BASE_MS", "40"),
        // A process killed mid-delivery is overtaken after this (35 s in production).
        ("HUB_DELIVERY_LEASE_MS", "8000"),
        // The fake vendors listen on plain http on loopback.
        ("HUB_ALLOW_INSECURE_LOOPBACK", "1"),
        // A key a test replaces reaches every function within a second (5 minutes in
        // production), so that updates released after a new key go out within a tick.
        ("HUB_SECRET_CACHE_SECONDS", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

impl Fixture {
    async fn parties() -> Parties {
        let gh_key = new_gh_key();
        (
            FakeVendor::start(VENDOR_SECRET).await,
            FakeVendor::start(RIVAL_SECRET).await,
            FakeAshby::start("globex-ashby-key").await,
            FakeAshby::start("initech-ashby-key").await,
            FakeGreenhouse::start(&gh_key).await,
            gh_key,
        )
    }

    fn assemble(base_url: String, host: Host, reg: &Registry, parties: Parties) -> Self {
        let (vendor, rival, ashby, other_ashby, greenhouse, gh_key) = parties;
        Self {
            base_url,
            host,
            token: reg.tenants[0].1.clone(),
            other_token: reg.tenants[1].1.clone(),
            vendor,
            rival,
            ashby,
            other_ashby,
            gh_key,
            greenhouse,
            gh_schemas: greenhouse_schemas(),
            type_id: pref("acme/criminal-basic").type_id().to_string(),
            disabled_type_id: pref("acme/premium").type_id().to_string(),
            rival_type_id: pref("rival/coding").type_id().to_string(),
            panel_type_id: pref("acme/panel").type_id().to_string(),
            api: ashby_openapi(),
            http: reqwest::Client::new(),
            table_store: None,
            deployment: None,
        }
    }

    /// The local hub, in-process, on an in-memory store.
    pub async fn local() -> Self {
        Self::local_with_retry_interval(Duration::from_secs(3_600)).await
    }

    /// The local hub with its own delivery schedule running every `interval`.
    pub async fn local_with_retry_interval(interval: Duration) -> Self {
        let parties = Self::parties().await;
        let reg = registry(&parties.0, &parties.1, &parties.2, &parties.3, &parties.5);
        let dir = std::env::temp_dir().join(format!("hub-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hub.toml");
        std::fs::write(&path, to_toml(&reg)).unwrap();
        let config = hub::Config::from_lookup(|k| {
            fast_env()
                .into_iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v)
        })
        .unwrap();
        let running = hub_local::server::start(hub_local::server::Options {
            port: 0,
            config: Some(path),
            quiet: true,
            hub_config: Some(config),
            // Tests normally drive the schedule themselves (`Fixture::tick`), deterministically.
            retry_interval: interval,
            ..Default::default()
        })
        .await
        .unwrap();
        let base = running.base_url.as_str().trim_end_matches('/').to_owned();
        Self::assemble(base, Host::Local(running), &reg, parties)
    }

    /// The five compiled Lambda functions (the four HTTP ones and deliver-updates) under the Runtime API emulator, on DynamoDB and
    /// Secrets Manager served by moto. `start_instances` processes serve `assessment.start`.
    pub async fn lambda(start_instances: usize) -> Self {
        Self::lambda_with(start_instances, |_| Vec::new()).await
    }

    /// As [`Fixture::lambda`], with extra environment variables per function binary, e.g. an
    /// `AWS_ENDPOINT_URL` of its own (the IAM test records each function's AWS calls apart).
    pub async fn lambda_with(
        start_instances: usize,
        per_function: impl Fn(&str) -> Vec<(String, String)>,
    ) -> Self {
        let parties = Self::parties().await;
        let reg = registry(&parties.0, &parties.1, &parties.2, &parties.3, &parties.5);
        let sdk = hub_tests::aws::sdk_config().await;
        let (ddb, table) = hub_tests::aws::fresh_table().await;
        let prefix = format!("test-{}/", uuid::Uuid::new_v4());
        let store = DynamoDbStore::new(ddb, table.clone());
        let store_for_tests =
            DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&sdk), table.clone());
        let secrets = SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&sdk));
        seed(
            &store,
            &secrets,
            &hub::secrets::SecretNames::new(prefix.clone()),
            &reg,
        )
        .await;

        let endpoint = std::env::var("HUB_TEST_AWS_ENDPOINT").unwrap();
        let mut env = fast_env();
        env.extend(
            [
                ("HUB_TABLE", table.as_str()),
                ("HUB_SECRET_PREFIX", prefix.as_str()),
                ("AWS_ENDPOINT_URL", endpoint.as_str()),
                ("AWS_REGION", "us-east-1"),
                ("AWS_ACCESS_KEY_ID", "test"),
                ("AWS_SECRET_ACCESS_KEY", "test"),
                ("RUST_LOG", "trace"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let specs = vec![
            FunctionSpec {
                binary: "list-assessments",
                routes: |p| {
                    matches!(
                        p,
                        "/assessment.list"
                            | "/assessment.customField.list"
                            | "/greenhouse/list_tests"
                            | "/greenhouse/test_status"
                    )
                },
                instances: 1,
            },
            FunctionSpec {
                binary: "start-assessment",
                routes: |p| matches!(p, "/assessment.start" | "/greenhouse/send_test"),
                instances: start_instances,
            },
            FunctionSpec {
                binary: "cancel",
                routes: |p| p == "/assessment.cancel",
                instances: 1,
            },
            FunctionSpec {
                binary: "result-callback",
                routes: |p| p.starts_with("/callbacks/") || p == "/greenhouse/response_error",
                instances: 1,
            },
            FunctionSpec {
                binary: "connect",
                routes: |p| p.starts_with("/connect/"),
                instances: 1,
            },
            FunctionSpec {
                binary: "deliver-updates",
                routes: |_| false,
                instances: 1,
            },
        ];
        let host = LambdaHost::start_with(specs, &env, per_function).await;
        let base = host.base_url.clone();
        let mut f = Self::assemble(base, Host::Lambda(host), &reg, parties);
        f.table_store = Some(Arc::new(store_for_tests));
        f.deployment = Some((table, prefix));
        f
    }

    /// Runs the compiled `hubctl` against the Lambda deployment's table, as an operator would;
    /// returns its exit code, stdout and stderr.
    pub async fn hubctl(&self, args: &[&str]) -> (i32, String, String) {
        let (table, prefix) = self.deployment.clone().expect("a Lambda fixture");
        let out = tokio::process::Command::new(hub_tests::lambda::bin_dir().join("hubctl"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(
                "AWS_ENDPOINT_URL",
                std::env::var("HUB_TEST_AWS_ENDPOINT").unwrap(),
            )
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("HUB_TABLE", table)
            .env("HUB_SECRET_PREFIX", prefix)
            .args(args)
            .output()
            .await
            .expect("run hubctl");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The hub's store (the local hub's own, or the Lambda deployment's table).
    pub fn store(&self) -> Arc<dyn AdminStore> {
        match &self.host {
            Host::Local(h) => h.store.clone(),
            Host::Lambda(_) => self
                .table_store
                .clone()
                .expect("lambda fixture has a table"),
        }
    }

    pub async fn stop(self) {
        match self.host {
            Host::Local(h) => h.stop().await,
            Host::Lambda(h) => h.stop().await,
        }
    }

    /// One run of the delivery schedule, once the tests' short backoff has elapsed: the local
    /// hub's in-process run, or an invocation of the `deliver-updates` function with an
    /// EventBridge scheduled event.
    pub async fn tick(&self) -> Value {
        tokio::time::sleep(Duration::from_millis(120)).await;
        match &self.host {
            Host::Local(h) => serde_json::to_value(
                hub::usecases::deliver::run_due(&h.app, 500, Duration::from_secs(30))
                    .await
                    .unwrap(),
            )
            .unwrap(),
            Host::Lambda(h) => h
                .invoke(
                    "deliver-updates",
                    json!({"version": "0", "id": uuid::Uuid::new_v4(), "detail-type": "Scheduled Event",
                           "source": "aws.events", "account": "123456789012",
                           "time": "2026-11-26T00:00:00Z", "region": "us-east-1",
                           "resources": ["arn:aws:events:us-east-1:123456789012:rule/hub"], "detail": {}}),
                )
                .await
                .unwrap_or_else(|e| panic!("deliver-updates failed: {e}")),
        }
    }

    /// Ticks the schedule until `done` holds, or panics after 15 s.
    pub async fn tick_until(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while !done() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            self.tick().await;
        }
    }

    /// Every log line the functions wrote (Lambda host only).
    pub fn logs(&self) -> Vec<String> {
        match &self.host {
            Host::Lambda(h) => h.logs(),
            Host::Local(_) => Vec::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// POSTs `body` with the trigger token as the Basic username, as Ashby does.
    pub async fn call(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{token}:"))
        );
        self.raw(path, Some(&auth), body.to_string().into_bytes())
            .await
    }

    pub async fn raw(&self, path: &str, auth: Option<&str>, body: Vec<u8>) -> (u16, Value) {
        let mut req = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or_else(|_| {
            panic!("{path} answered {status} with a non-JSON body ({ct}): {text:?}")
        });
        (status, json)
    }

    pub fn start_body(&self, type_id: &str, application: &str) -> Value {
        json!({
            "assessment_type_id": type_id,
            "candidate": {"ashby_id": "cand-1", "first_name": CANDIDATE_FIRST,
                          "last_name": CANDIDATE_LAST, "email": CANDIDATE_EMAIL,
                          "ashby_profile_url": "https://app.ashbyhq.com/candidates/cand-1"},
            "application": {"ashby_id": application, "status": "Active"},
            "job": {"ashby_id": "job-1", "name": "Backend Engineer", "req_id": "ENG-142",
                    "ashby_job_url": "https://app.ashbyhq.com/jobs/job-1",
                    "hiringTeam": [{"userId": "e9ed20fd-d45f-4aad-8a00-a19bfba0083e",
                                    "firstName": "Grace", "lastName": "Hopper",
                                    "email": "grace@customer.example", "role": "Hiring Manager"}]}
        })
    }

    /// Starts an assessment for a fresh application; returns its id.
    pub async fn start_ok(&self) -> String {
        let app = format!("app-{}", uuid::Uuid::new_v4());
        let (status, body) = self
            .call(
                "/assessment.start",
                &self.token,
                &self.start_body(&self.type_id, &app),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        self.assert_valid("AssessmentStartSuccessResponse", &body);
        body["results"]["assessment_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Order requests the vendor received for one assessment (retries included).
    pub fn orders_for(&self, id: &str) -> Vec<hub_tests::fakes::ReceivedOrder> {
        self.vendor
            .of_type("assessment.requested")
            .into_iter()
            .filter(|o| o.body["assessment_id"] == id)
            .collect()
    }

    pub fn callback_url(&self, vendor: &str) -> String {
        self.url(&format!("/callbacks/{vendor}"))
    }

    /// GETs `path_and_query` with `key` as the Basic username, as Greenhouse does.
    pub async fn gh_get(&self, path_and_query: &str, key: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(self.url(path_and_query))
            .basic_auth(key, Some(""))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or_else(|_| {
            panic!("{path_and_query} answered {status} with a non-JSON body: {text:?}")
        });
        (status, json)
    }

    /// A `send_test` body as Greenhouse sends it, for the test at `url`.
    pub fn send_test_body(&self, partner_test_id: &str, url: &str) -> Value {
        json!({
            "partner_test_id": partner_test_id,
            "candidate": {"first_name": CANDIDATE_FIRST, "last_name": CANDIDATE_LAST,
                          "preferred_name": null, "resume_url": null, "phone_number": null,
                          "email": CANDIDATE_EMAIL,
                          "greenhouse_profile_url": "https://app.greenhouse.io/people/17681532?application_id=26234709"},
            "sent_by": "recruiter@customer.example",
            "url": url,
            "a_property_greenhouse_added_later": {"ignored": true}
        })
    }

    /// Checks `body` against Greenhouse's `schemas.json` `$defs/<name>`.
    pub fn assert_gh_valid(&self, name: &str, body: &Value) {
        if let Err(e) = self.gh_schemas.check(name, body) {
            panic!("Greenhouse {name} violated: {e:?}\n{body:#}");
        }
    }

    pub fn assert_valid(&self, schema: &str, body: &Value) {
        if let Err(e) = self.api.check(schema, body) {
            panic!("{schema} violated: {e:?}\n{body:#}");
        }
    }
}

/// Writes tenants, vendors and their secrets the way an operator would.
async fn seed(
    store: &dyn AdminStore,
    secrets: &dyn SecretAdmin,
    names: &hub::secrets::SecretNames,
    reg: &Registry,
) {
    for (v, secret) in &reg.vendors {
        store.put_vendor(v).await.unwrap();
        secrets
            .put(&names.signing_secret(&v.id), &SecretString::from(*secret))
            .await
            .unwrap();
    }
    for (t, token, key) in &reg.tenants {
        store
            .put_tenant(t, &TokenHash::of(&SecretString::from(token.clone())))
            .await
            .unwrap();
        let (name, value) = match t.ats {
            hub::domain::Ats::Ashby => (names.ashby_api_key(&t.id), key),
            hub::domain::Ats::Greenhouse => (names.greenhouse_partner_key(&t.id), token),
        };
        secrets
            .put(&name, &SecretString::from(value.clone()))
            .await
            .unwrap();
    }
}

fn to_toml(reg: &Registry) -> String {
    let mut out = String::new();
    for (v, secret) in &reg.vendors {
        out.push_str(&format!(
            "[[vendors]]\nid = \"{}\"\nname = \"{}\"\norder_url = \"{}\"\nsigning_secret = \"{}\"\n",
            v.id, v.name, v.order_url, secret
        ));
        for p in &v.packages {
            out.push_str(&format!(
                "[[vendors.packages]]\nid = \"{}\"\nname = \"{}\"\ndescription = \"{}\"\n",
                p.id, p.name, p.description
            ));
            if !p.options.is_empty() {
                let options = serde_json::to_value(&p.options).unwrap();
                out.push_str(&format!("options = {}\n", toml_inline(&options)));
            }
        }
    }
    for (t, token, key) in &reg.tenants {
        let pkgs: Vec<String> = t.packages.iter().map(|p| format!("\"{p}\"")).collect();
        if t.ats == hub::domain::Ats::Greenhouse {
            out.push_str(&format!(
                "[[tenants]]\nid = \"{}\"\nname = \"{}\"\nats = \"greenhouse\"\ntrigger_token = \"{}\"\npackages = [{}]\n",
                t.id, t.name, token, pkgs.join(", ")
            ));
            continue;
        }
        out.push_str(&format!(
            "[[tenants]]\nid = \"{}\"\nname = \"{}\"\ntrigger_token = \"{}\"\nashby_api_key = \"{}\"\nashby_base_url = \"{}\"\npackages = [{}]\n",
            t.id, t.name, token, key, t.ashby_base_url, pkgs.join(", ")
        ));
    }
    out
}

/// A JSON value as TOML (inline tables and arrays; JSON's string escapes are TOML's).
fn toml_inline(v: &Value) -> String {
    match v {
        Value::Object(m) => format!(
            "{{ {} }}",
            m.iter()
                .map(|(k, v)| format!("{k} = {}", toml_inline(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(toml_inline).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

/// An application id no other test uses.
pub fn fresh_app() -> String {
    format!("app-{}", uuid::Uuid::new_v4())
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A local hub in-process with the tenants and vendors of `toml` (the `--config` format), the
/// tests' fast settings overridden by `env`, on memory or on the DynamoDB `table` (created if
/// missing, through `AWS_ENDPOINT_URL`), running its delivery schedule every `retry_interval`.
pub async fn start_local_hub(
    toml: &str,
    table: Option<String>,
    retry_interval: Duration,
    env: &[(&str, &str)],
) -> RunningHub {
    let dir = std::env::temp_dir().join(format!("hub-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("hub.toml");
    std::fs::write(&path, toml).unwrap();
    let mut vars = fast_env();
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = hub::Config::from_lookup(|k| {
        vars.iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    })
    .unwrap();
    hub_local::server::start(hub_local::server::Options {
        port: 0,
        config: Some(path),
        quiet: true,
        table,
        hub_config: Some(config),
        retry_interval,
        ..Default::default()
    })
    .await
    .unwrap()
}
