//! The benchmark: each function's release binary beside a hello-world `lambda_http` binary
//! built with the same profile. `./infra/bench.sh` builds what it needs, starts moto and runs
//! this; see docs/performance.md for what each figure means and the last run's results.
//!
//! Environment: `HUB_TEST_AWS_ENDPOINT` (moto), `HUB_BIN_DIR` (the host release binaries),
//! `HUB_BENCH_ZIP_DIR` (cargo lambda's arm64 output), optional `HUB_BENCH_MOTO_PID` (for the
//! throughput run's CPU split), `HUB_BENCH_COLD_RUNS` (default 15), `HUB_BENCH_INVOCATIONS`
//! (default 1000), `HUB_BENCH_LIFECYCLES` (default 100 on moto, ten times that in memory).
// Test code throughout (this crate is the tests' workspace member): a failed unwrap or expect
// is a failed test, and expect's message says which step failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod capacity;
mod cost;
mod throughput;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue};
use hub::domain::{Package, PackageId, PackageRef, Tenant, TenantId, TokenHash, Vendor, VendorId};
use hub::ports::RegistryAdmin;
use hub::secrets::{SecretAdmin, SecretNames, SecretsManagerSource};
use hub::store::DynamoDbStore;
use hub_tests::aws_proxy::{AwsCall, AwsProxy};
use hub_tests::fakes::{FakeAshby, FakeVendor};
use hub_tests::lambda::{self, FunctionSpec, LambdaHost};
use hub_tests::lifecycle::percentile;
use secrecy::SecretString;
use serde_json::{Value, json};

use capacity::Units;

const VENDOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ASHBY_KEY: &str = "bench-ashby-key";
use hub_tests::lifecycle::PACKAGE;

/// The floor: a hello-world `lambda_http` function with the same release profile.
const HELLO: &str = "bench-hello";
/// The hub's functions, in the order a lifecycle reaches them.
const FUNCTIONS: [&str; 5] = [
    "list-assessments",
    "start-assessment",
    "result-callback",
    "cancel",
    "deliver-updates",
];

/// Targets from the issue, printed beside each figure.
const INIT_RATIO_TARGET: f64 = 1.5;
const OVERHEAD_P99_TARGET: Duration = Duration::from_millis(1);
const RSS_TARGET: u64 = 40 * 1024 * 1024;
const ZIP_TARGET: u64 = 3 * 1024 * 1024;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Everything the functions run against: moto behind a recording proxy, the fake vendor and
/// Ashby behind recording proxies (their time is what a function waits on), one tenant and one
/// vendor seeded as an operator would.
struct Bench {
    env: Vec<(String, String)>,
    aws: AwsProxy,
    vendor_proxy: AwsProxy,
    ashby_proxy: AwsProxy,
    token: String,
    type_id: String,
    _vendor: Arc<FakeVendor>,
    _ashby: Arc<FakeAshby>,
}

impl Bench {
    async fn setup() -> Self {
        let vendor = FakeVendor::start(VENDOR_SECRET).await;
        let ashby = FakeAshby::start(ASHBY_KEY).await;
        let order_url = url::Url::parse(&vendor.order_url).unwrap();
        let vendor_proxy = AwsProxy::start(&format!("http://{}", order_url.authority())).await;
        let ashby_proxy = AwsProxy::start(&ashby.base_url).await;
        let aws = AwsProxy::start(&hub_tests::aws::endpoint()).await;

        let sdk = hub_tests::aws::sdk_config().await;
        let (ddb, table) = hub_tests::aws::fresh_table().await;
        let store = DynamoDbStore::new(ddb, table.clone());
        let secrets = SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&sdk));
        let prefix = format!("bench-{}/", uuid::Uuid::new_v4().simple());
        let names = SecretNames::new(prefix.clone());
        let package = PackageRef::parse(PACKAGE).unwrap();
        let acme = Vendor {
            id: VendorId::parse("acme").unwrap(),
            name: "Acme Checks".into(),
            order_url: format!("{}{}", vendor_proxy.url(), order_url.path())
                .parse()
                .unwrap(),
            packages: vec![Package {
                id: PackageId::parse("criminal-basic").unwrap(),
                name: "Criminal record check".into(),
                description: "County and national criminal search".into(),
                options: vec![],
            }],
        };
        store.put_vendor(&acme).await.unwrap();
        secrets
            .put(
                &names.signing_secret(&acme.id),
                &SecretString::from(VENDOR_SECRET),
            )
            .await
            .unwrap();
        let token = format!("bench-token-{}", uuid::Uuid::new_v4());
        let tenant = Tenant {
            id: TenantId::parse("benchco").unwrap(),
            name: "Bench Co".into(),
            ats: hub::domain::Ats::Ashby,
            ashby_base_url: ashby_proxy.url().parse().unwrap(),
            packages: vec![package.clone()],
            disabled: false,
        };
        store
            .put_tenant(&tenant, &TokenHash::of(&SecretString::from(token.clone())))
            .await
            .unwrap();
        secrets
            .put(
                &names.ashby_api_key(&tenant.id),
                &SecretString::from(ASHBY_KEY),
            )
            .await
            .unwrap();

        // What template.yaml gives every function, with AWS pointed at the recording proxy.
        let env = [
            ("HUB_TABLE", table.as_str()),
            ("HUB_SECRET_PREFIX", prefix.as_str()),
            ("AWS_ENDPOINT_URL", aws.url()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("RUST_LOG", "info,hub=info"),
            // The fake vendor and Ashby listen on plain http on loopback.
            ("HUB_ALLOW_INSECURE_LOOPBACK", "1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Self {
            env,
            aws,
            vendor_proxy,
            ashby_proxy,
            token,
            type_id: package.type_id().to_string(),
            _vendor: vendor,
            _ashby: ashby,
        }
    }

    fn reset(&self) {
        self.aws.reset();
        self.vendor_proxy.reset();
        self.ashby_proxy.reset();
    }

    /// Every call a function made since the last reset, to AWS, the vendor and Ashby.
    fn calls(&self) -> Calls {
        Calls {
            aws: self.aws.calls(),
            vendor: self.vendor_proxy.calls(),
            ashby: self.ashby_proxy.calls(),
        }
    }

    fn http(&self, path: &str, headers: &[(&str, String)], body: &Value) -> Value {
        let mut map = HeaderMap::new();
        map.insert("host", HeaderValue::from_static("hub.example"));
        map.insert("content-type", HeaderValue::from_static("application/json"));
        for (k, v) in headers {
            map.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        lambda::http_event("POST", path, "", &map, body.to_string().as_bytes()).1
    }

    fn ashby(&self, path: &str, body: &Value) -> Value {
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:", self.token))
        );
        self.http(path, &[("authorization", auth)], body)
    }

    fn list(&self) -> Value {
        self.ashby("/assessment.list", &json!({}))
    }

    fn start(&self) -> Value {
        let app = format!("bench-app-{}", uuid::Uuid::new_v4());
        self.ashby(
            "/assessment.start",
            &json!({
                "assessment_type_id": self.type_id,
                "candidate": {"ashby_id": "cand-1", "first_name": "Ada", "last_name": "Lovelace",
                              "email": "ada@candidate.example",
                              "ashby_profile_url": "https://app.ashbyhq.com/candidates/cand-1"},
                "application": {"ashby_id": app, "status": "Active"},
                "job": {"ashby_id": "job-1", "name": "Backend Engineer", "req_id": "ENG-142",
                        "ashby_job_url": "https://app.ashbyhq.com/jobs/job-1"}
            }),
        )
    }

    fn cancel(&self, id: &str) -> Value {
        self.ashby("/assessment.cancel", &json!({ "assessment_id": id }))
    }

    /// A vendor callback, signed as the vendor signs it: `in_progress`, or `completed` with a
    /// score and report.
    fn callback(&self, id: &str, completed: bool) -> Value {
        let body = if completed {
            json!({"assessment_id": id, "status": "completed", "status_label": "Clear",
                   "report_url": format!("https://vendor.example/reports/{id}"),
                   "result": {"type": "numeric_score", "value": 97, "label": "Score"}})
        } else {
            json!({"assessment_id": id, "status": "in_progress", "status_label": "In progress"})
        };
        let webhook_id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let signature = standardwebhooks::Webhook::new(VENDOR_SECRET)
            .unwrap()
            .sign(&webhook_id, ts, body.to_string().as_bytes())
            .unwrap();
        self.http(
            "/callbacks/acme",
            &[
                ("webhook-id", webhook_id),
                ("webhook-timestamp", ts.to_string()),
                ("webhook-signature", signature),
            ],
            &body,
        )
    }

    /// EventBridge's scheduled event.
    fn schedule(&self) -> Value {
        json!({"version": "0", "id": uuid::Uuid::new_v4(), "detail-type": "Scheduled Event",
               "source": "aws.events", "account": "123456789012",
               "time": "2026-11-26T00:00:00Z", "region": "us-east-1",
               "resources": ["arn:aws:events:us-east-1:123456789012:rule/hub"], "detail": {}})
    }
}

/// The calls of one stretch of work.
struct Calls {
    aws: Vec<AwsCall>,
    vendor: Vec<AwsCall>,
    ashby: Vec<AwsCall>,
}

impl Calls {
    fn count(&self, service: &str) -> usize {
        self.aws
            .iter()
            .filter(|c| c.operation.starts_with(service))
            .count()
    }
}

/// A function's answer: its status and JSON body; panics on anything but success, so that the
/// benchmark never times a failure path by mistake.
fn ok_body(what: &str, answer: Result<Value, Value>) -> Value {
    let resp = answer.unwrap_or_else(|e| panic!("{what}: function error {e}"));
    if resp.get("statusCode").is_none() {
        // A scheduled run answers with its report.
        return resp;
    }
    let body = match (resp["body"].as_str(), resp["isBase64Encoded"].as_bool()) {
        (Some(b), Some(true)) => {
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).unwrap()).unwrap()
        }
        (Some(b), _) => b.to_owned(),
        (None, _) => String::new(),
    };
    let status = resp["statusCode"].as_u64().unwrap_or(0);
    assert_eq!(status, 200, "{what} answered {status}: {body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

fn assessment_id(body: &Value) -> String {
    body["results"]["assessment_id"]
        .as_str()
        .unwrap_or_else(|| panic!("start answered without an id: {body}"))
        .to_owned()
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1024.0 / 1024.0)
}

fn median(sorted: &[Duration]) -> Duration {
    percentile(sorted, 50.0)
}

fn sorted(mut v: Vec<Duration>) -> Vec<Duration> {
    v.sort();
    v
}

fn mark(ok: bool) -> &'static str {
    if ok { "yes" } else { "**no**" }
}

/// Cold starts of one binary.
#[derive(Default)]
struct Cold {
    init: Vec<Duration>,
    first: Vec<Duration>,
    rss: u64,
    secrets_calls: usize,
    dynamodb_calls: usize,
}

/// The event each binary gets, within one round: a start's id feeds the callback and cancel.
async fn cold_round(bench: &Bench, results: &mut BTreeMap<&'static str, Cold>) {
    let mut id = String::new();
    for binary in std::iter::once(HELLO).chain(FUNCTIONS) {
        let event = match binary {
            "start-assessment" => bench.start(),
            "result-callback" => bench.callback(&id, false),
            "cancel" => bench.cancel(&id),
            "deliver-updates" => bench.schedule(),
            _ => bench.list(),
        };
        bench.reset();
        let cold = lambda::cold_start(binary, &bench.env, event).await;
        let body = ok_body(binary, cold.answer);
        if binary == "start-assessment" {
            id = assessment_id(&body);
        }
        let calls = bench.calls();
        let r = results.entry(binary).or_default();
        r.init.push(cold.init);
        r.first.push(cold.first_response);
        r.rss = r.rss.max(cold.peak_rss.unwrap_or(0));
        r.secrets_calls += calls.count("secretsmanager:");
        r.dynamodb_calls += calls.count("dynamodb:");
    }
}

/// What the function's "answered" line (logged after line `from`) says it waited on other
/// services, and the bytes it logged for the invocation. The line is read from its output pipe,
/// so it may come in just after the response.
async fn waited(host: &LambdaHost, from: usize) -> (Duration, usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let lines = host.logs_since(from);
        let answered = lines.iter().find_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            (v["fields"]["message"] == "answered").then(|| v["fields"]["waited_us"].as_u64())?
        });
        if let Some(us) = answered {
            return (
                Duration::from_micros(us),
                lines.iter().map(|l| l.len() + 1).sum(),
            );
        }
        assert!(
            Instant::now() < deadline,
            "no \"answered\" line with waited_us in {lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Warm invocations of one function.
struct Warm {
    total: Vec<Duration>,
    overhead: Vec<Duration>,
    secrets_calls: usize,
    dynamodb_calls: usize,
    rss: u64,
    log_bytes: usize,
}

/// Invokes `binary` with each event in turn, the first uncounted; returns the figures of the
/// others and every answer's body.
async fn warm_run(
    bench: &Bench,
    host: &LambdaHost,
    binary: &str,
    events: impl Iterator<Item = Value>,
) -> (Warm, Vec<Value>) {
    let mut warm = Warm {
        total: Vec::new(),
        overhead: Vec::new(),
        secrets_calls: 0,
        dynamodb_calls: 0,
        rss: 0,
        log_bytes: 0,
    };
    let mut bodies = Vec::new();
    for (i, event) in events.enumerate() {
        bench.reset();
        let lines = host.log_count();
        let (answer, total) = host.invoke_timed(binary, event).await;
        bodies.push(ok_body(binary, answer));
        if i == 0 {
            // The first event warms this function up again right before its run (its secrets
            // may have expired from the cache while the other functions ran): not counted.
            continue;
        }
        let calls = bench.calls();
        let (waited, log_bytes) = if binary == HELLO {
            (Duration::ZERO, 0)
        } else {
            waited(host, lines).await
        };
        warm.total.push(total);
        warm.overhead.push(total.saturating_sub(waited));
        warm.log_bytes += log_bytes;
        warm.secrets_calls += calls.count("secretsmanager:");
        warm.dynamodb_calls += calls.count("dynamodb:");
    }
    warm.rss = host
        .pids(binary)
        .into_iter()
        .filter_map(lambda::peak_rss)
        .max()
        .unwrap_or(0);
    (warm, bodies)
}

/// One step of the lifecycle: what it cost in calls and capacity.
struct Step {
    name: &'static str,
    binary: &'static str,
    in_lifecycle: bool,
    dynamodb: Vec<String>,
    units: Units,
    secrets_calls: usize,
    vendor_calls: usize,
    ashby_calls: usize,
}

async fn lifecycle(bench: &Bench, host: &LambdaHost) -> Vec<Step> {
    bench.aws.measure_items(true);
    let mut steps = Vec::new();
    let mut run =
        async |name: &'static str, in_lifecycle: bool, binary: &'static str, event: Value| {
            bench.reset();
            let body = ok_body(name, host.invoke(binary, event).await);
            let calls = bench.calls();
            let mut units = Units::default();
            let mut dynamodb = Vec::new();
            for c in calls
                .aws
                .iter()
                .filter(|c| c.operation.starts_with("dynamodb:"))
            {
                units += capacity::units(c);
                dynamodb.push(label(c));
            }
            steps.push(Step {
                name,
                binary,
                in_lifecycle,
                dynamodb,
                units,
                secrets_calls: calls.count("secretsmanager:"),
                vendor_calls: calls.vendor.len(),
                ashby_calls: calls.ashby.len(),
            });
            body
        };
    run("assessment.list", true, "list-assessments", bench.list()).await;
    let id = assessment_id(&run("assessment.start", true, "start-assessment", bench.start()).await);
    run(
        "callback in_progress",
        true,
        "result-callback",
        bench.callback(&id, false),
    )
    .await;
    run(
        "callback completed",
        true,
        "result-callback",
        bench.callback(&id, true),
    )
    .await;
    run(
        "scheduled run (nothing due)",
        true,
        "deliver-updates",
        bench.schedule(),
    )
    .await;
    let other = assessment_id(
        &run(
            "(another assessment.start)",
            false,
            "start-assessment",
            bench.start(),
        )
        .await,
    );
    run(
        "assessment.cancel (another)",
        true,
        "cancel",
        bench.cancel(&other),
    )
    .await;
    bench.aws.measure_items(false);
    steps
}

/// The kind of item a key names: `ASSESSMENT#<uuid>` / `DELIVERY#...` is `DELIVERY`, otherwise
/// the partition key's prefix (`TENANT`, `TOKEN`, `VENDOR`, `ASSESSMENT`, `START`, `WEBHOOK`).
fn item_kind(key: &Value) -> String {
    let sk = key["sk"]["S"].as_str().unwrap_or_default();
    let pk = key["pk"]["S"].as_str().unwrap_or_default();
    let of = if sk.starts_with("DELIVERY") { sk } else { pk };
    of.split('#').next().unwrap_or_default().to_owned()
}

/// A DynamoDB call, named by its operation and the kinds of items it touches, e.g.
/// `TransactWriteItems(Put ASSESSMENT + Put DELIVERY)`.
fn label(c: &AwsCall) -> String {
    let op = c.operation.trim_start_matches("dynamodb:");
    let key_of = |part: &Value| {
        if part.get("Key").is_some() {
            item_kind(&part["Key"])
        } else {
            item_kind(&part["Item"])
        }
    };
    match op {
        "TransactWriteItems" | "TransactGetItems" => {
            let parts: Vec<String> = c.body["TransactItems"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i.as_object()?.iter().next())
                .map(|(kind, part)| format!("{kind} {}", key_of(part)))
                .collect();
            format!("{op}({})", parts.join(" + "))
        }
        "Query" => match c.index_name() {
            Some(index) => format!("Query index {index}"),
            None => {
                let pk = c.body["ExpressionAttributeValues"]
                    .as_object()
                    .and_then(|v| {
                        v.values()
                            .filter_map(|x| x["S"].as_str())
                            .find(|s| s.contains('#'))
                    })
                    .unwrap_or_default();
                format!("Query {}", pk.split('#').next().unwrap_or_default())
            }
        },
        _ => format!("{op} {}", key_of(&c.body)),
    }
}

/// The zipped arm64 bootstrap of each binary as `cargo lambda build --release --arm64
/// --output-format zip` left it.
fn zip_sizes() -> BTreeMap<&'static str, Option<u64>> {
    let dir = std::env::var_os("HUB_BENCH_ZIP_DIR").map(std::path::PathBuf::from);
    std::iter::once(HELLO)
        .chain(FUNCTIONS)
        .map(|b| {
            let size = dir
                .as_ref()
                .and_then(|d| std::fs::metadata(d.join(b).join("bootstrap.zip")).ok())
                .map(|m| m.len());
            (b, size)
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let cold_runs = env_usize("HUB_BENCH_COLD_RUNS", 15);
    let invocations = env_usize("HUB_BENCH_INVOCATIONS", 1000);
    let mut out = String::new();
    let bench = Bench::setup().await;
    let began = Instant::now();

    // 1. Cold starts, round-robin so that noise spreads evenly over the binaries.
    eprintln!("cold starts: {cold_runs} rounds");
    let mut cold: BTreeMap<&'static str, Cold> = BTreeMap::new();
    for _ in 0..cold_runs {
        cold_round(&bench, &mut cold).await;
    }

    // 2. Warm invocations: one process per function, its first invocation not counted.
    eprintln!("warm invocations: {invocations} per function");
    let specs = std::iter::once(HELLO)
        .chain(FUNCTIONS)
        .map(|binary| FunctionSpec {
            binary,
            routes: |_| false,
            instances: 1,
        })
        .collect();
    let host = LambdaHost::start(specs, &bench.env).await;
    let mut warm: BTreeMap<&'static str, Warm> = BTreeMap::new();
    // Warm-up: the first invocation of each is its cold one.
    let first = bench.start();
    let id = assessment_id(&ok_body(
        "start",
        host.invoke("start-assessment", first).await,
    ));
    for (binary, event) in [
        (HELLO, bench.list()),
        ("list-assessments", bench.list()),
        ("result-callback", bench.callback(&id, false)),
        ("cancel", bench.cancel(&id)),
        ("deliver-updates", bench.schedule()),
    ] {
        ok_body(binary, host.invoke(binary, event).await);
    }
    // 5. AWS calls per lifecycle, on the warm processes, while the secrets they read in the
    // warm-up are still cached (HUB_SECRET_CACHE_SECONDS).
    eprintln!("one lifecycle, counted");
    let steps = lifecycle(&bench, &host).await;
    let n = invocations;
    let (w, _) = warm_run(&bench, &host, HELLO, (0..=n).map(|_| bench.list())).await;
    warm.insert(HELLO, w);
    let (w, _) = warm_run(
        &bench,
        &host,
        "list-assessments",
        (0..=n).map(|_| bench.list()),
    )
    .await;
    warm.insert("list-assessments", w);
    let (w, bodies) = warm_run(
        &bench,
        &host,
        "start-assessment",
        (0..=n).map(|_| bench.start()),
    )
    .await;
    warm.insert("start-assessment", w);
    let ids: Vec<String> = bodies.iter().map(assessment_id).collect();
    let (w, _) = warm_run(
        &bench,
        &host,
        "result-callback",
        ids.iter().map(|id| bench.callback(id, false)),
    )
    .await;
    warm.insert("result-callback", w);
    let (w, _) = warm_run(
        &bench,
        &host,
        "cancel",
        ids.iter().map(|id| bench.cancel(id)),
    )
    .await;
    warm.insert("cancel", w);
    let (w, _) = warm_run(
        &bench,
        &host,
        "deliver-updates",
        (0..=n).map(|_| bench.schedule()),
    )
    .await;
    warm.insert("deliver-updates", w);

    if let Some(path) = std::env::var_os("HUB_BENCH_LOGS") {
        std::fs::write(&path, host.logs().join("\n")).unwrap();
    }
    host.stop().await;

    // 6. Throughput of the local hub.

    let zips = zip_sizes();

    // The report.
    let hello_init = median(&sorted(cold[HELLO].init.clone()));
    let hello_first = median(&sorted(cold[HELLO].first.clone()));
    writeln!(
        out,
        "\n## Cold start ({cold_runs} runs each; spawn under the Runtime API emulator, AWS on moto)\n"
    )
    .unwrap();
    writeln!(
        out,
        "| binary | init median ms | init max ms | init ÷ hello | ≤ {INIT_RATIO_TARGET}× | first response median ms | max ms | ÷ hello | Secrets Manager calls per cold start | DynamoDB calls per cold start |"
    )
    .unwrap();
    writeln!(out, "|---|---:|---:|---:|:-:|---:|---:|---:|---:|---:|").unwrap();
    for binary in std::iter::once(HELLO).chain(FUNCTIONS) {
        let c = &cold[binary];
        let init = sorted(c.init.clone());
        let first = sorted(c.first.clone());
        let ratio = median(&init).as_secs_f64() / hello_init.as_secs_f64();
        writeln!(
            out,
            "| {binary} | {} | {} | {ratio:.2} | {} | {} | {} | {:.2} | {:.1} | {:.1} |",
            ms(median(&init)),
            ms(*init.last().unwrap()),
            if binary == HELLO {
                "—"
            } else {
                mark(ratio <= INIT_RATIO_TARGET)
            },
            ms(median(&first)),
            ms(*first.last().unwrap()),
            median(&first).as_secs_f64() / hello_first.as_secs_f64(),
            c.secrets_calls as f64 / init.len() as f64,
            c.dynamodb_calls as f64 / init.len() as f64,
        )
        .unwrap();
    }

    writeln!(
        out,
        "\n## Warm invocations ({invocations} each, after one uncounted; time from the event handed out to the response received)\n"
    )
    .unwrap();
    writeln!(
        out,
        "| binary | total p50 ms | total p99 ms | hub overhead p50 ms | overhead p99 ms | p99 ≤ 1 ms | DynamoDB calls each | Secrets Manager calls (warm) | 0 warm | peak RSS MB | ≤ 40 MB | log bytes each |"
    )
    .unwrap();
    writeln!(
        out,
        "|---|---:|---:|---:|---:|:-:|---:|---:|:-:|---:|:-:|---:|"
    )
    .unwrap();
    for binary in std::iter::once(HELLO).chain(FUNCTIONS) {
        let w = &warm[binary];
        let total = sorted(w.total.clone());
        let overhead = sorted(w.overhead.clone());
        let rss = w.rss.max(cold[binary].rss);
        writeln!(
            out,
            "| {binary} | {} | {} | {} | {} | {} | {:.2} | {} | {} | {} | {} | {:.0} |",
            ms(median(&total)),
            ms(percentile(&total, 99.0)),
            ms(median(&overhead)),
            ms(percentile(&overhead, 99.0)),
            mark(percentile(&overhead, 99.0) <= OVERHEAD_P99_TARGET),
            w.dynamodb_calls as f64 / total.len() as f64,
            w.secrets_calls,
            mark(w.secrets_calls == 0),
            mb(rss),
            mark(rss <= RSS_TARGET),
            w.log_bytes as f64 / total.len() as f64,
        )
        .unwrap();
    }

    writeln!(
        out,
        "\n## Zipped arm64 bootstrap (`cargo lambda build --release --arm64 --output-format zip`)\n"
    )
    .unwrap();
    writeln!(out, "| binary | bootstrap.zip MB | ≤ 3 MB |").unwrap();
    writeln!(out, "|---|---:|:-:|").unwrap();
    for (binary, size) in &zips {
        match size {
            Some(s) => writeln!(
                out,
                "| {binary} | {} | {} |",
                mb(*s),
                mark(*s <= ZIP_TARGET)
            ),
            None => writeln!(out, "| {binary} | not built | — |"),
        }
        .unwrap();
    }

    writeln!(
        out,
        "\n## AWS calls of one lifecycle (warm functions; capacity units by DynamoDB's rules from the items' sizes)\n"
    )
    .unwrap();
    writeln!(
        out,
        "| step | DynamoDB calls | RCU | WCU | Secrets Manager | vendor calls | Ashby calls |"
    )
    .unwrap();
    writeln!(out, "|---|---|---:|---:|---:|---:|---:|").unwrap();
    let mut total = Units::default();
    let (mut ddb_calls, mut sm_calls) = (0, 0);
    for s in &steps {
        writeln!(
            out,
            "| {} | {} ({}) | {} | {} | {} | {} | {} |",
            s.name,
            s.dynamodb.len(),
            s.dynamodb.join(", "),
            s.units.read,
            s.units.write,
            s.secrets_calls,
            s.vendor_calls,
            s.ashby_calls
        )
        .unwrap();
        if s.in_lifecycle {
            total += s.units;
            ddb_calls += s.dynamodb.len();
            sm_calls += s.secrets_calls;
        }
    }
    writeln!(
        out,
        "| **lifecycle** (all but the other start) | {ddb_calls} | {} | {} | {sm_calls} | | |",
        total.read, total.write
    )
    .unwrap();

    let cold_secrets: BTreeMap<&str, f64> = cold
        .iter()
        .map(|(b, c)| (*b, c.secrets_calls as f64 / c.init.len() as f64))
        .collect();
    let cost = cost::Estimate::new(&steps, &warm, &cold_secrets);
    out.push_str(&cost.report());
    // Everything so far, before the longest part.
    print!("{out}");
    out.clear();

    // 6. Throughput of the local hub.
    let lifecycles = env_usize("HUB_BENCH_LIFECYCLES", 100);
    eprintln!("throughput: the local hub on moto and in memory");
    out.push_str(&throughput::run(lifecycles).await.report());
    writeln!(
        out,
        "\nBenchmark took {:.0} s.",
        began.elapsed().as_secs_f64()
    )
    .unwrap();
    println!("{out}");
}
