//! The AWS bill of 1,000 assessments, from the calls and capacity units one lifecycle was
//! measured to use and public list prices (us-east-1, on-demand, no free tier). What cannot be
//! measured on loopback is an assumption, named where it is used: how long DynamoDB and the
//! remote parties take to answer in AWS.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hub_tests::lifecycle::percentile;

use crate::{Step, Warm};

/// List prices, us-east-1, as published on the AWS pricing pages (checked 2026-11).
const LAMBDA_ARM_GB_SECOND: f64 = 0.000_013_333_4;
const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
const HTTP_API_REQUEST: f64 = 1.00 / 1e6;
const DYNAMODB_WRITE_UNIT: f64 = 0.625 / 1e6;
const DYNAMODB_READ_UNIT: f64 = 0.125 / 1e6;
const SECRETS_MANAGER_CALL: f64 = 0.05 / 10_000.0;
const SECRET_MONTH: f64 = 0.40;
const LOGS_INGESTED_GB: f64 = 0.50;

/// The functions' memory size in template.yaml.
const MEMORY_GB: f64 = 128.0 / 1024.0;
/// Assumed: one DynamoDB call's round trip inside a region.
const DYNAMODB_LATENCY: Duration = Duration::from_millis(8);
/// Assumed: one call to the vendor or to Ashby over the internet.
const REMOTE_LATENCY: Duration = Duration::from_millis(250);
/// Assumed: Lambda's own log lines per invocation (START, END, REPORT in JSON).
const PLATFORM_LOG_BYTES: f64 = 600.0;
/// Scheduled runs of deliver-updates in a 30-day month (every minute).
const SCHEDULED_RUNS_PER_MONTH: f64 = 30.0 * 24.0 * 60.0;

pub struct Estimate {
    lines: Vec<(String, f64)>,
    fixed: Vec<(String, f64)>,
    notes: Vec<String>,
}

fn billed_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).ceil()
}

impl Estimate {
    /// `cold_secrets`: Secrets Manager calls per cold start, by binary.
    pub fn new(
        steps: &[Step],
        warm: &BTreeMap<&'static str, Warm>,
        cold_secrets: &BTreeMap<&str, f64>,
    ) -> Self {
        let per_k = 1000.0;
        let lifecycle: Vec<&Step> = steps.iter().filter(|s| s.in_lifecycle).collect();
        let overhead = |binary: &str| {
            let mut o = warm[binary].overhead.clone();
            o.sort();
            percentile(&o, 50.0)
        };
        // Lambda: one invocation per step; each lasts the hub's own time plus its calls.
        let mut gb_s = 0.0;
        let mut api_requests = 0.0;
        let mut log_bytes = 0.0;
        let mut scheduled_ms = 0.0;
        for s in &lifecycle {
            let d = overhead(s.binary)
                + DYNAMODB_LATENCY * s.dynamodb.len() as u32
                + REMOTE_LATENCY * (s.vendor_calls + s.ashby_calls) as u32;
            if s.binary == "deliver-updates" {
                scheduled_ms = billed_ms(d);
                continue;
            }
            gb_s += billed_ms(d) / 1000.0 * MEMORY_GB;
            api_requests += 1.0;
            let w = &warm[s.binary];
            log_bytes += w.log_bytes as f64 / w.total.len() as f64 + PLATFORM_LOG_BYTES;
        }
        let read: f64 = lifecycle
            .iter()
            .filter(|s| s.binary != "deliver-updates")
            .map(|s| s.units.read)
            .sum();
        let write: f64 = lifecycle
            .iter()
            .filter(|s| s.binary != "deliver-updates")
            .map(|s| s.units.write)
            .sum();
        let secrets: usize = lifecycle.iter().map(|s| s.secrets_calls).sum();
        // The most a lifecycle can cost in Secrets Manager calls: every invocation a cold start.
        let secrets_cold: f64 = lifecycle
            .iter()
            .filter(|s| s.binary != "deliver-updates")
            .map(|s| cold_secrets.get(s.binary).copied().unwrap_or(0.0))
            .sum();
        let lines = vec![
            (
                format!("Lambda requests ({api_requests:.0} per assessment)"),
                per_k * api_requests * LAMBDA_REQUEST,
            ),
            (
                format!(
                    "Lambda duration ({:.3} GB-s per assessment, arm64, 128 MB)",
                    gb_s
                ),
                per_k * gb_s * LAMBDA_ARM_GB_SECOND,
            ),
            (
                format!("API Gateway HTTP API ({api_requests:.0} requests per assessment)"),
                per_k * api_requests * HTTP_API_REQUEST,
            ),
            (
                format!("DynamoDB on-demand writes ({write} WRU per assessment)"),
                per_k * write * DYNAMODB_WRITE_UNIT,
            ),
            (
                format!("DynamoDB on-demand reads ({read} RRU per assessment)"),
                per_k * read * DYNAMODB_READ_UNIT,
            ),
            (
                format!("Secrets Manager calls ({secrets} per assessment on warm functions)"),
                per_k * secrets as f64 * SECRETS_MANAGER_CALL,
            ),
            (
                format!(
                    "(at most, if every invocation were a cold start: {secrets_cold:.0} Secrets Manager calls per assessment; not in the total)"
                ),
                per_k * secrets_cold * SECRETS_MANAGER_CALL,
            ),
            (
                format!(
                    "CloudWatch Logs ingestion ({:.0} bytes per assessment)",
                    log_bytes
                ),
                per_k * log_bytes / 1e9 * LOGS_INGESTED_GB,
            ),
        ];
        let scheduled = steps.iter().find(|s| s.binary == "deliver-updates");
        let scheduled_read = scheduled.map_or(0.0, |s| s.units.read);
        let fixed = vec![
            (
                format!(
                    "deliver-updates every minute ({SCHEDULED_RUNS_PER_MONTH:.0} runs, {scheduled_ms:.0} ms and {scheduled_read} RRU each when nothing is due)"
                ),
                SCHEDULED_RUNS_PER_MONTH
                    * (LAMBDA_REQUEST
                        + scheduled_ms / 1000.0 * MEMORY_GB * LAMBDA_ARM_GB_SECOND
                        + scheduled_read * DYNAMODB_READ_UNIT),
            ),
            (
                "Secrets Manager: one secret per tenant and per vendor (here 1 + 1)".into(),
                2.0 * SECRET_MONTH,
            ),
        ];
        let notes = vec![
            format!(
                "Durations on AWS are assumed, not measured: the hub's own time (warm overhead p50 above) plus {} ms per DynamoDB call and {} ms per call to the vendor or Ashby, billed per started millisecond.",
                DYNAMODB_LATENCY.as_millis(),
                REMOTE_LATENCY.as_millis()
            ),
            "Every lifecycle here includes one cancel, so the estimate is on the high side. A warm function reads each secret again once its cache expires (HUB_SECRET_CACHE_SECONDS); a cold start reads the secrets its first request needs (cold-start table).".into(),
        ];
        Self {
            lines,
            fixed,
            notes,
        }
    }

    pub fn report(&self) -> String {
        let mut out = String::new();
        writeln!(
            out,
            "\n## AWS cost of 1,000 assessments (list prices, us-east-1, no free tier)\n"
        )
        .unwrap();
        writeln!(out, "| item | USD per 1,000 assessments |").unwrap();
        writeln!(out, "|---|---:|").unwrap();
        for (what, usd) in &self.lines {
            writeln!(out, "| {what} | {usd:.4} |").unwrap();
        }
        let total: f64 = self
            .lines
            .iter()
            .filter(|(what, _)| !what.starts_with("(at most"))
            .map(|(_, u)| u)
            .sum();
        writeln!(out, "| **total** | **{total:.4}** |").unwrap();
        writeln!(out, "\n| fixed, per month | USD |").unwrap();
        writeln!(out, "|---|---:|").unwrap();
        for (what, usd) in &self.fixed {
            writeln!(out, "| {what} | {usd:.4} |").unwrap();
        }
        for n in &self.notes {
            writeln!(out, "\n{n}").unwrap();
        }
        out
    }
}
