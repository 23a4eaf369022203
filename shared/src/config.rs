//! Typed configuration read once per cold start. A missing or malformed variable fails fast with
//! its name, so a misconfigured deployment is obvious in the first log line.

use std::time::Duration;

use url::Url;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("configuration: {var} {problem}")]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

/// Environment variable names, shared with `template.yaml` and the local hub.
pub mod vars {
    pub const TABLE: &str = "HUB_TABLE";
    pub const SECRET_PREFIX: &str = "HUB_SECRET_PREFIX";
    pub const PUBLIC_URL: &str = "HUB_PUBLIC_URL";
    pub const PII_RETENTION_DAYS: &str = "HUB_PII_RETENTION_DAYS";
    pub const SECRET_CACHE_SECONDS: &str = "HUB_SECRET_CACHE_SECONDS";
    pub const VENDOR_TIMEOUT_MS: &str = "HUB_VENDOR_TIMEOUT_MS";
    pub const VENDOR_ATTEMPTS: &str = "HUB_VENDOR_ATTEMPTS";
    pub const VENDOR_BACKOFF_MS: &str = "HUB_VENDOR_BACKOFF_MS";
    pub const ASHBY_TIMEOUT_MS: &str = "HUB_ASHBY_TIMEOUT_MS";
    pub const RETRY_BASE_MS: &str = "HUB_RETRY_BASE_MS";
    pub const DELIVERY_MAX_AGE_HOURS: &str = "HUB_DELIVERY_MAX_AGE_HOURS";
    pub const ALLOW_INSECURE_LOOPBACK: &str = "HUB_ALLOW_INSECURE_LOOPBACK";
    pub const DELIVERY_LEASE_MS: &str = "HUB_DELIVERY_LEASE_MS";
    pub const AWS_ATTEMPT_TIMEOUT_MS: &str = "HUB_AWS_ATTEMPT_TIMEOUT_MS";
    pub const ASHBY_VERSION: &str = "HUB_ASHBY_VERSION";
    pub const PARTNER_NAME: &str = "HUB_PARTNER_NAME";
}

/// The Ashby API version the hub is built against, pinned unless `HUB_ASHBY_VERSION` says
/// otherwise (CONTRACT.md §11).
pub const DEFAULT_ASHBY_VERSION: &str = "2026-01-01";

#[derive(Debug, Clone)]
pub struct Config {
    /// DynamoDB table; `None` only for the in-memory local hub.
    pub table: Option<String>,
    pub secret_prefix: String,
    /// Base URL vendors call back to; derived from the request's host when unset.
    pub public_url: Option<Url>,
    pub pii_retention: Duration,
    pub secret_cache_ttl: Duration,
    pub vendor_timeout: Duration,
    pub vendor_attempts: u32,
    pub vendor_backoff: Duration,
    pub ashby_timeout: Duration,
    /// How long a processed `webhook-id` is remembered.
    pub webhook_retention: Duration,
    /// First backoff after a failed delivery; it doubles per attempt (with jitter) up to an hour.
    pub retry_base: Duration,
    /// After this long undelivered, a delivery is marked dead and kept for manual redelivery.
    pub delivery_max_age: Duration,
    /// Allow vendor order URLs over plain http to loopback (local runs and tests only).
    pub allow_insecure_loopback: bool,
    /// The shortest lease on a delivery being sent. It must outlast the longest a function can
    /// run (the 30 s Lambda timeout), or a slow but live request could be overtaken by the
    /// scheduled run and the delivery sent twice.
    pub delivery_lease: Duration,
    /// How long one attempt at a DynamoDB or Secrets Manager call may take before the SDK gives
    /// it up (and retries, `retry::AWS_SDK_ATTEMPTS` in all): a stuck connection costs a request seconds,
    /// not the function's whole timeout.
    pub aws_attempt_timeout: Duration,
    /// The Ashby API version every call pins (`Ashby-Version`, a date such as `2026-01-01`).
    pub ashby_version: String,
    /// The integration's name in Ashby's list of integrations, as the connect page tells the
    /// customer to search for it.
    pub partner_name: String,
}

/// The partner name unless `HUB_PARTNER_NAME` says otherwise.
pub const DEFAULT_PARTNER_NAME: &str = "Assessment Hub";
const MAX_PARTNER_NAME: usize = 80;

impl Default for Config {
    fn default() -> Self {
        Self {
            table: None,
            secret_prefix: "ashby-hub/".into(),
            public_url: None,
            pii_retention: Duration::from_secs(30 * 86_400),
            secret_cache_ttl: Duration::from_secs(300),
            vendor_timeout: Duration::from_millis(3_000),
            vendor_attempts: 2,
            vendor_backoff: Duration::from_millis(200),
            ashby_timeout: Duration::from_millis(5_000),
            webhook_retention: Duration::from_secs(30 * 86_400),
            retry_base: Duration::from_secs(30),
            delivery_max_age: Duration::from_secs(72 * 3_600),
            allow_insecure_loopback: false,
            delivery_lease: Duration::from_secs(35),
            aws_attempt_timeout: Duration::from_millis(2_000),
            ashby_version: DEFAULT_ASHBY_VERSION.into(),
            partner_name: DEFAULT_PARTNER_NAME.into(),
        }
    }
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, ConfigError> {
    let Some(raw) = get(var) else { return Ok(None) };
    match raw.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(ConfigError {
            var,
            problem: format!("must be a whole number from {min} to {max}"),
        }),
    }
}

/// `YYYY-MM-DD`.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// `from_env` over any lookup, for tests.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let d = Self::default();
        let public_url = match get(vars::PUBLIC_URL) {
            None => None,
            Some(u) => Some(
                Url::parse(&u)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or(ConfigError {
                        var: vars::PUBLIC_URL,
                        problem: "must be an absolute http(s) URL".into(),
                    })?,
            ),
        };
        let ms = Duration::from_millis;
        Ok(Self {
            table: get(vars::TABLE),
            secret_prefix: get(vars::SECRET_PREFIX).unwrap_or(d.secret_prefix),
            public_url,
            pii_retention: number(&get, vars::PII_RETENTION_DAYS, 1, 3650)?
                .map(|n| Duration::from_secs(n * 86_400))
                .unwrap_or(d.pii_retention),
            secret_cache_ttl: number(&get, vars::SECRET_CACHE_SECONDS, 0, 86_400)?
                .map(Duration::from_secs)
                .unwrap_or(d.secret_cache_ttl),
            vendor_timeout: number(&get, vars::VENDOR_TIMEOUT_MS, 100, 60_000)?
                .map(ms)
                .unwrap_or(d.vendor_timeout),
            vendor_attempts: number(&get, vars::VENDOR_ATTEMPTS, 1, 10)?
                .map(|n| n as u32)
                .unwrap_or(d.vendor_attempts),
            vendor_backoff: number(&get, vars::VENDOR_BACKOFF_MS, 0, 10_000)?
                .map(ms)
                .unwrap_or(d.vendor_backoff),
            ashby_timeout: number(&get, vars::ASHBY_TIMEOUT_MS, 100, 60_000)?
                .map(ms)
                .unwrap_or(d.ashby_timeout),
            webhook_retention: d.webhook_retention,
            retry_base: number(&get, vars::RETRY_BASE_MS, 1, 3_600_000)?
                .map(ms)
                .unwrap_or(d.retry_base),
            delivery_max_age: number(&get, vars::DELIVERY_MAX_AGE_HOURS, 1, 24 * 365)?
                .map(|h| Duration::from_secs(h * 3_600))
                .unwrap_or(d.delivery_max_age),
            allow_insecure_loopback: get(vars::ALLOW_INSECURE_LOOPBACK)
                .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
            delivery_lease: number(&get, vars::DELIVERY_LEASE_MS, 1_000, 900_000)?
                .map(ms)
                .unwrap_or(d.delivery_lease),
            // At most 8 s: three attempts and the backoffs between them stay under the 30 s
            // that API Gateway waits for a function.
            aws_attempt_timeout: number(&get, vars::AWS_ATTEMPT_TIMEOUT_MS, 100, 8_000)?
                .map(ms)
                .unwrap_or(d.aws_attempt_timeout),
            ashby_version: match get(vars::ASHBY_VERSION) {
                None => d.ashby_version,
                Some(v) if is_date(v.trim()) => v.trim().to_owned(),
                Some(_) => {
                    return Err(ConfigError {
                        var: vars::ASHBY_VERSION,
                        problem: "must be an Ashby API version, a date such as 2026-01-01".into(),
                    });
                }
            },
            partner_name: match get(vars::PARTNER_NAME) {
                None => d.partner_name,
                Some(v)
                    if !v.trim().is_empty()
                        && v.trim().chars().count() <= MAX_PARTNER_NAME
                        && !v.chars().any(char::is_control) =>
                {
                    v.trim().to_owned()
                }
                Some(_) => {
                    return Err(ConfigError {
                        var: vars::PARTNER_NAME,
                        problem: format!(
                            "must be the integration's name in Ashby: 1 to {MAX_PARTNER_NAME} \
                             printable characters"
                        ),
                    });
                }
            },
        })
    }

    /// The table name, or an error naming the variable (the Lambda functions need one).
    pub fn require_table(&self) -> Result<&str, ConfigError> {
        self.table.as_deref().ok_or(ConfigError {
            var: vars::TABLE,
            problem: "is not set".into(),
        })
    }

    /// Worst-case time one vendor call can take, retries included; order leases outlast it.
    pub fn vendor_call_budget(&self) -> Duration {
        let backoffs: Duration = (0..self.vendor_attempts.saturating_sub(1))
            .map(|i| self.vendor_backoff * 2u32.saturating_pow(i))
            .sum();
        self.vendor_timeout * self.vendor_attempts + backoffs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_apply_and_a_bad_value_names_its_variable() {
        let c = from(&[("HUB_TABLE", "t")]).expect("valid");
        assert_eq!(c.require_table(), Ok("t"));
        assert_eq!(c.vendor_attempts, 2);
        assert_eq!(c.retry_base, Duration::from_secs(30));
        let e = from(&[("HUB_VENDOR_ATTEMPTS", "lots")]).expect_err("invalid");
        assert_eq!(e.var, "HUB_VENDOR_ATTEMPTS");
        let e = from(&[])
            .expect("valid")
            .require_table()
            .expect_err("missing");
        assert_eq!(e.var, "HUB_TABLE");
        assert!(from(&[("HUB_PUBLIC_URL", "ftp://x")]).is_err());
        assert_eq!(c.ashby_version, "2026-01-01");
        let c = from(&[("HUB_ASHBY_VERSION", "2027-04-01")]).expect("valid");
        assert_eq!(c.ashby_version, "2027-04-01");
        for bad in ["latest", "2026-1-1", "2026-01-01; x"] {
            let e = from(&[("HUB_ASHBY_VERSION", bad)]).expect_err(bad);
            assert_eq!(e.var, "HUB_ASHBY_VERSION");
        }
    }

    #[test]
    fn the_aws_attempt_timeout_is_bounded_so_its_retries_fit_a_request() {
        let c = from(&[]).expect("valid");
        assert_eq!(c.aws_attempt_timeout, Duration::from_millis(2_000));
        assert_eq!(crate::retry::aws_call_budget(&c), Duration::from_secs(9));
        let c = from(&[("HUB_AWS_ATTEMPT_TIMEOUT_MS", "8000")]).expect("valid");
        assert!(crate::retry::aws_call_budget(&c) < Duration::from_secs(30));
        for bad in ["99", "8001", "2s", "-1"] {
            let e = from(&[("HUB_AWS_ATTEMPT_TIMEOUT_MS", bad)]).expect_err(bad);
            assert_eq!(e.var, "HUB_AWS_ATTEMPT_TIMEOUT_MS");
            assert_eq!(e.problem, "must be a whole number from 100 to 8000");
        }
    }
}
