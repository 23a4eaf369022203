//! Business and latency metrics in CloudWatch's embedded metric format (EMF): in Lambda each
//! metric is one JSON line on stdout, which CloudWatch Logs turns into a metric in the `AshbyHub`
//! namespace; no agent, no `cloudwatch:PutMetricData` permission, nothing on the request path but
//! a write to stdout. Elsewhere (tests, the local hub) the values are kept in memory, aggregated
//! per metric and dimension, so a test can read them back.
//!
//! Invariant: a line carries only a metric name, at most one dimension and a number. Names,
//! dimension names and dimension values are `&'static str`, so an id, a token or candidate data,
//! which only ever exist as runtime strings, cannot become part of a metric.
//!
//! The API, for the handlers that record:
//!
//! - [`Metrics::from_env`]: EMF on stdout when `AWS_LAMBDA_FUNCTION_NAME` is set (in Lambda), in
//!   memory otherwise; [`Metrics::stdout`] and [`Metrics::memory`] choose explicitly.
//! - [`Metrics::count`]`(name, n)`: a `Count` metric without dimensions, e.g.
//!   `metrics.count(names::ASSESSMENTS_STARTED, 1)`.
//! - [`Metrics::count_with`]`(name, dimension, value, n)`: a `Count` metric with one dimension,
//!   e.g. `metrics.count_with(names::CALLBACKS_REJECTED, dimensions::REASON, "invalid_signature", 1)`.
//! - [`Metrics::latency_ms`]`(target, ms)`: `OutboundLatency` in milliseconds with the dimension
//!   `Target` = `ashby` | `vendor` | `dynamodb` | `secretsmanager` ([`Target`]).
//! - [`Metrics::age_seconds`]`(name, s)`: a gauge in seconds, for
//!   `OldestPendingDeliveryAgeSeconds`.
//! - [`Metrics::total`] and [`Metrics::total_with`]: the sum recorded so far (in-memory only).
//!
//! The alarms in `template.yaml` read `AshbyDeliveriesRetried`, `AshbyDeliveriesDead`,
//! `OldestPendingDeliveryAgeSeconds`, `AshbyVersionNotActive`, `AshbyFilesDead`,
//! `GreenhousePatchesDead`, `GreenhouseResponseErrors` and `TenantsNeedingAttention` without dimensions: keep those
//! dimensionless.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Map, Value, json};

/// The CloudWatch namespace of every hub metric.
pub const NAMESPACE: &str = "AshbyHub";

/// Metric names, as they appear in CloudWatch and in `template.yaml`'s alarms.
pub mod names {
    /// An assessment was created by `assessment.start` (a repeated start is not counted).
    pub const ASSESSMENTS_STARTED: &str = "AssessmentsStarted";
    /// The vendor accepted an order (2xx).
    pub const VENDOR_ORDERS_ACCEPTED: &str = "VendorOrdersAccepted";
    /// The vendor refused an order with a message for the recruiter (422).
    pub const VENDOR_ORDERS_REJECTED: &str = "VendorOrdersRejected";
    /// The vendor could not be reached or answered an error after every attempt.
    pub const VENDOR_ORDERS_FAILED: &str = "VendorOrdersFailed";
    /// A vendor callback was verified and applied (or was a harmless duplicate).
    pub const CALLBACKS_ACCEPTED: &str = "CallbacksAccepted";
    /// A vendor callback was refused; dimension [`super::dimensions::REASON`].
    pub const CALLBACKS_REJECTED: &str = "CallbacksRejected";
    /// Ashby accepted an `assessment.update`.
    pub const ASHBY_DELIVERIES_SUCCEEDED: &str = "AshbyDeliveriesSucceeded";
    /// An `assessment.update` failed and stays queued for another attempt.
    pub const ASHBY_DELIVERIES_RETRIED: &str = "AshbyDeliveriesRetried";
    /// An `assessment.update` was given up on; it needs an operator.
    pub const ASHBY_DELIVERIES_DEAD: &str = "AshbyDeliveriesDead";
    /// An answer from Ashby said the API version the hub pins is not active (deprecated).
    pub const ASHBY_VERSION_NOT_ACTIVE: &str = "AshbyVersionNotActive";
    /// A vendor's report file was put on the candidate in Ashby.
    pub const ASHBY_FILES_UPLOADED: &str = "AshbyFilesUploaded";
    /// A report file failed and stays queued for another attempt.
    pub const ASHBY_FILES_RETRIED: &str = "AshbyFilesRetried";
    /// A report file was given up on (refused, too large, or parked for an operator).
    pub const ASHBY_FILES_DEAD: &str = "AshbyFilesDead";
    /// How long the longest-waiting due delivery (to Ashby or a vendor) has been due, in
    /// seconds: a gauge written by each scheduled delivery run, 0 when nothing is overdue.
    pub const OLDEST_PENDING_DELIVERY_AGE_SECONDS: &str = "OldestPendingDeliveryAgeSeconds";
    /// Duration of one outbound call; dimension [`super::dimensions::TARGET`].
    pub const OUTBOUND_LATENCY: &str = "OutboundLatency";
    /// Greenhouse accepted a `PATCH` ("read my test_status").
    pub const GREENHOUSE_PATCHES_SUCCEEDED: &str = "GreenhousePatchesSucceeded";
    /// A `PATCH` to Greenhouse failed and stays queued for another attempt.
    pub const GREENHOUSE_PATCHES_RETRIED: &str = "GreenhousePatchesRetried";
    /// A `PATCH` to Greenhouse was given up on or parked; it needs an operator.
    pub const GREENHOUSE_PATCHES_DEAD: &str = "GreenhousePatchesDead";
    /// Greenhouse reported a reply of the hub's as unusable (`response_error`).
    pub const GREENHOUSE_RESPONSE_ERRORS: &str = "GreenhouseResponseErrors";

    /// A tenant was recorded as needing attention: Ashby refused its key on a delivery, or an
    /// update to its ATS was given up on (counted at each such record: at the change, then at
    /// most every few minutes while it lasts).
    pub const TENANTS_NEEDING_ATTENTION: &str = "TenantsNeedingAttention";
    /// A connect page refused a request: a forged POST, too many failed attempts, an unknown
    /// or dead link; dimension [`super::dimensions::REASON`].
    pub const CONNECT_REFUSED: &str = "ConnectRefused";

    /// Every name above (the template's alarms are checked against it).
    pub const ALL: [&str; 21] = [
        ASSESSMENTS_STARTED,
        VENDOR_ORDERS_ACCEPTED,
        VENDOR_ORDERS_REJECTED,
        VENDOR_ORDERS_FAILED,
        CALLBACKS_ACCEPTED,
        CALLBACKS_REJECTED,
        ASHBY_DELIVERIES_SUCCEEDED,
        ASHBY_DELIVERIES_RETRIED,
        ASHBY_DELIVERIES_DEAD,
        OLDEST_PENDING_DELIVERY_AGE_SECONDS,
        OUTBOUND_LATENCY,
        ASHBY_VERSION_NOT_ACTIVE,
        ASHBY_FILES_UPLOADED,
        ASHBY_FILES_RETRIED,
        ASHBY_FILES_DEAD,
        GREENHOUSE_PATCHES_SUCCEEDED,
        GREENHOUSE_PATCHES_RETRIED,
        GREENHOUSE_PATCHES_DEAD,
        GREENHOUSE_RESPONSE_ERRORS,
        TENANTS_NEEDING_ATTENTION,
        CONNECT_REFUSED,
    ];
}

/// Dimension names.
pub mod dimensions {
    /// Why a callback was rejected, a fixed word such as `invalid_signature`.
    pub const REASON: &str = "Reason";
    /// Which party an outbound call went to; values from [`super::Target`].
    pub const TARGET: &str = "Target";
}

/// The party an outbound call goes to: the value of the `Target` dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Ashby,
    Greenhouse,
    Vendor,
    DynamoDb,
    SecretsManager,
}

impl Target {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ashby => "ashby",
            Self::Greenhouse => "greenhouse",
            Self::Vendor => "vendor",
            Self::DynamoDb => "dynamodb",
            Self::SecretsManager => "secretsmanager",
        }
    }
}

/// CloudWatch units used by the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
}

impl Unit {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
            Self::Seconds => "Seconds",
        }
    }
}

/// One recorded value: a metric, at most one dimension, a number.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    name: &'static str,
    unit: Unit,
    dimension: Option<(&'static str, &'static str)>,
    value: f64,
}

type Key = (&'static str, Option<(&'static str, &'static str)>);

enum Sink {
    /// EMF lines on stdout, where Lambda's log capture picks them up.
    Stdout,
    /// Sum per metric and dimension value; bounded, since every key is a static string.
    Memory(Mutex<HashMap<Key, f64>>),
}

/// Where the hub's metrics go; built once per process and shared by every request.
pub struct Metrics {
    sink: Sink,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sink = match self.sink {
            Sink::Stdout => "stdout (EMF)",
            Sink::Memory(_) => "memory",
        };
        f.debug_struct("Metrics").field("sink", &sink).finish()
    }
}

impl Metrics {
    /// EMF on stdout in Lambda (`AWS_LAMBDA_FUNCTION_NAME` is set), in memory anywhere else.
    pub fn from_env() -> Self {
        if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
            Self::stdout()
        } else {
            Self::memory()
        }
    }

    /// Writes every value as one EMF line to stdout.
    pub fn stdout() -> Self {
        Self { sink: Sink::Stdout }
    }

    /// Keeps the values in memory, readable with [`Metrics::total`].
    pub fn memory() -> Self {
        Self {
            sink: Sink::Memory(Mutex::new(HashMap::new())),
        }
    }

    /// Adds `n` to a dimensionless `Count` metric.
    pub fn count(&self, name: &'static str, n: u64) {
        self.record(Sample {
            name,
            unit: Unit::Count,
            dimension: None,
            value: n as f64,
        });
    }

    /// Adds `n` to a `Count` metric with one dimension, e.g. `Reason` = `invalid_signature`.
    pub fn count_with(
        &self,
        name: &'static str,
        dimension: &'static str,
        value: &'static str,
        n: u64,
    ) {
        self.record(Sample {
            name,
            unit: Unit::Count,
            dimension: Some((dimension, value)),
            value: n as f64,
        });
    }

    /// Records how long one call to `target` took.
    pub fn latency_ms(&self, target: Target, ms: f64) {
        self.record(Sample {
            name: names::OUTBOUND_LATENCY,
            unit: Unit::Milliseconds,
            dimension: Some((dimensions::TARGET, target.as_str())),
            value: ms,
        });
    }

    /// Records a dimensionless age in seconds, such as `OldestPendingDeliveryAgeSeconds`.
    pub fn age_seconds(&self, name: &'static str, seconds: f64) {
        self.record(Sample {
            name,
            unit: Unit::Seconds,
            dimension: None,
            value: seconds,
        });
    }

    /// The sum of the dimensionless values recorded under `name` (always 0 on stdout).
    pub fn total(&self, name: &str) -> f64 {
        self.sum(|(n, d)| *n == name && d.is_none())
    }

    /// The sum of the values recorded under `name` with `dimension` = `value` (0 on stdout).
    pub fn total_with(&self, name: &str, dimension: &str, value: &str) -> f64 {
        self.sum(|(n, d)| *n == name && *d == Some((dimension, value)))
    }

    fn sum(&self, matches: impl Fn(&Key) -> bool) -> f64 {
        match &self.sink {
            Sink::Stdout => 0.0,
            Sink::Memory(m) => m
                .lock()
                .map(|m| m.iter().filter(|(k, _)| matches(k)).map(|(_, v)| v).sum())
                .unwrap_or_default(),
        }
    }

    fn record(&self, sample: Sample) {
        // CloudWatch rejects NaN and infinities; a broken clock must not break the line.
        if !sample.value.is_finite() {
            return;
        }
        match &self.sink {
            Sink::Stdout => {
                // One `println!` holds the stdout lock for the whole line, so it never
                // interleaves with a log line written by another task. Stamped with when it is
                // written, like every log line (the system clock, not the use cases').
                let now = crate::clock::Clock::now(&crate::clock::SystemClock);
                println!("{}", emf_line(&sample, now.as_ms()));
            }
            Sink::Memory(m) => {
                if let Ok(mut m) = m.lock() {
                    *m.entry((sample.name, sample.dimension)).or_default() += sample.value;
                }
            }
        }
    }
}

/// One EMF document: the `_aws` metadata naming the metric, its unit and dimension set, then the
/// dimension value and the number as top-level members, as the EMF specification requires.
fn emf_line(sample: &Sample, timestamp_ms: i64) -> String {
    let dimension_set: Vec<&str> = sample.dimension.iter().map(|(k, _)| *k).collect();
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimension_set],
                "Metrics": [{"Name": sample.name, "Unit": sample.unit.as_str()}],
            }],
        }),
    );
    if let Some((k, v)) = sample.dimension {
        doc.insert(k.into(), Value::from(v));
    }
    doc.insert(sample.name.into(), Value::from(sample.value));
    Value::Object(doc).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sample: Sample) -> Value {
        let line = emf_line(&sample, 1_700_000_000_123);
        assert!(!line.contains('\n'), "one line: {line}");
        serde_json::from_str(&line).expect("EMF is JSON")
    }

    #[test]
    fn a_count_is_an_emf_document_with_an_empty_dimension_set() {
        let doc = parse(Sample {
            name: names::ASHBY_DELIVERIES_DEAD,
            unit: Unit::Count,
            dimension: None,
            value: 2.0,
        });
        assert_eq!(
            doc,
            json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_123_i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "AshbyHub",
                        "Dimensions": [[]],
                        "Metrics": [{"Name": "AshbyDeliveriesDead", "Unit": "Count"}],
                    }],
                },
                "AshbyDeliveriesDead": 2.0,
            })
        );
    }

    #[test]
    fn a_dimension_is_declared_in_the_metadata_and_valued_at_the_top_level() {
        let doc = parse(Sample {
            name: names::CALLBACKS_REJECTED,
            unit: Unit::Count,
            dimension: Some((dimensions::REASON, "invalid_signature")),
            value: 1.0,
        });
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "AshbyHub");
        assert_eq!(directive["Dimensions"], json!([["Reason"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "CallbacksRejected", "Unit": "Count"}])
        );
        assert_eq!(doc["Reason"], "invalid_signature");
        assert_eq!(doc["CallbacksRejected"], 1.0);
    }

    #[test]
    fn every_emf_line_carries_only_metadata_dimensions_and_the_number() {
        let doc = parse(Sample {
            name: names::OUTBOUND_LATENCY,
            unit: Unit::Milliseconds,
            dimension: Some((dimensions::TARGET, Target::SecretsManager.as_str())),
            value: 12.5,
        });
        let mut keys: Vec<&str> = doc
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["OutboundLatency", "Target", "_aws"]);
        assert_eq!(doc["Target"], "secretsmanager");
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            "Milliseconds"
        );
        // Every metric referenced in the metadata has a top-level numeric member, and every
        // dimension a top-level string member, or CloudWatch drops the document.
        for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .expect("metrics")
        {
            let name = m["Name"].as_str().expect("name");
            assert!(doc[name].is_number(), "{name}");
        }
        for d in doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
            .as_array()
            .expect("dimension set")
        {
            assert!(doc[d.as_str().expect("dimension")].is_string());
        }
    }

    #[test]
    fn in_memory_metrics_sum_per_metric_and_dimension() {
        let m = Metrics::memory();
        m.count(names::ASSESSMENTS_STARTED, 1);
        m.count(names::ASSESSMENTS_STARTED, 2);
        m.count_with(
            names::CALLBACKS_REJECTED,
            dimensions::REASON,
            "invalid_signature",
            1,
        );
        m.count_with(names::CALLBACKS_REJECTED, dimensions::REASON, "unknown", 4);
        m.latency_ms(Target::Ashby, 30.0);
        m.latency_ms(Target::Ashby, f64::NAN);
        m.age_seconds(names::OLDEST_PENDING_DELIVERY_AGE_SECONDS, 90.0);
        assert_eq!(m.total(names::ASSESSMENTS_STARTED), 3.0);
        assert_eq!(
            m.total_with(
                names::CALLBACKS_REJECTED,
                dimensions::REASON,
                "invalid_signature"
            ),
            1.0
        );
        assert_eq!(m.total(names::CALLBACKS_REJECTED), 0.0, "dimensioned apart");
        assert_eq!(
            m.total_with(names::OUTBOUND_LATENCY, dimensions::TARGET, "ashby"),
            30.0,
            "NaN dropped"
        );
        assert_eq!(m.total(names::OLDEST_PENDING_DELIVERY_AGE_SECONDS), 90.0);
        assert_eq!(m.total(names::VENDOR_ORDERS_FAILED), 0.0);
    }

    #[test]
    fn outbound_targets_are_the_documented_dimension_values() {
        let targets = [
            Target::Ashby,
            Target::Vendor,
            Target::DynamoDb,
            Target::SecretsManager,
        ];
        assert_eq!(
            targets.map(Target::as_str),
            ["ashby", "vendor", "dynamodb", "secretsmanager"]
        );
    }
}
