//! Every retry the hub makes, as named policies with their bounds. Each kind of failure is
//! retried at exactly one level, so retries never multiply:
//!
//! | policy | what fails | who retries | bound |
//! | --- | --- | --- | --- |
//! | [`CONFLICT`] | a change to an assessment lost a race (`ChangeOutcome::Conflict`, which the store also answers for a write caught in another transaction) | the use case: re-read, decide again | 8 tries, ≤ ~1.3 s of waiting |
//! | [`CONTENTION`] | a store write lost a race inside one store call (a registry read-modify-write, a start key taken over, a single-item update caught in a transaction) | the store adapter, inside that call | 5 tries, ≤ ~0.6 s of waiting |
//! | [`AWS_SDK_ATTEMPTS`] | a DynamoDB or Secrets Manager call timed out, was throttled or got a 5xx | the AWS SDK's standard retry, each attempt bounded by `HUB_AWS_ATTEMPT_TIMEOUT_MS` | 3 attempts |
//! | [`vendor_attempts`] | an order or cancel placed inline (in Ashby's start or cancel call) got no answer | the vendor client, within the request | `HUB_VENDOR_ATTEMPTS` (2), `HUB_VENDOR_BACKOFF_MS` doubling |
//! | [`DeliveryBackoff`] | a delivery (order, cancel, Ashby update) was not accepted | the delivery queue, one attempt per run | exponential from `HUB_RETRY_BASE_MS`, ≤ 1 h apart, dead after `HUB_DELIVERY_MAX_AGE_HOURS` |
//!
//! A store call never retries a `Conflict` (that is the use case's), a use case never retries
//! `Unavailable` (the SDK already did), and a delivery attempt makes one vendor call (the queue is
//! its retry).

use std::time::Duration;

use rand::Rng;

use crate::clock::Timestamp;
use crate::config::Config;
use crate::ports::Retry;

/// A bounded number of tries with exponential backoff between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Tries in all, the first included.
    pub tries: u32,
    /// The wait before the second try; it doubles before each further one.
    pub first: Duration,
    /// No wait is longer than this.
    pub cap: Duration,
    /// Full jitter (a random wait up to the computed one), so that racing losers spread out
    /// instead of colliding again in lockstep; off for a single caller retrying a remote.
    pub jitter: bool,
}

impl Backoff {
    /// The wait before try number `try_no` (1 = the first retry).
    pub fn delay(&self, try_no: u32) -> Duration {
        let exp = self
            .first
            .saturating_mul(1u32 << try_no.saturating_sub(1).min(16))
            .min(self.cap);
        if self.jitter && !exp.is_zero() {
            Duration::from_micros(rand::rng().random_range(1..=exp.as_micros().max(1) as u64))
        } else {
            exp
        }
    }

    /// Sleeps before try number `try_no` (1 = the first retry).
    pub async fn wait(&self, try_no: u32) {
        tokio::time::sleep(self.delay(try_no)).await;
    }

    /// The longest all the waits together can take.
    pub fn max_total_wait(&self) -> Duration {
        (1..self.tries).fold(Duration::ZERO, |sum, n| {
            sum + self
                .first
                .saturating_mul(1u32 << (n - 1).min(16))
                .min(self.cap)
        })
    }
}

/// A change to one assessment that lost a race: re-read it, decide again. Races between a start,
/// a callback, a cancel and the scheduled run resolve in one or two rounds; eight means
/// something is hammering the item, and the caller gets a clean 503.
pub const CONFLICT: Backoff = Backoff {
    tries: 8,
    first: Duration::from_millis(10),
    cap: Duration::from_millis(320),
    jitter: true,
};

/// A store write that lost a race inside one store call.
pub const CONTENTION: Backoff = Backoff {
    tries: 5,
    first: Duration::from_millis(20),
    cap: Duration::from_millis(320),
    jitter: true,
};

/// Attempts of one DynamoDB or Secrets Manager call by the AWS SDK's standard retry (its
/// default); each attempt is cut off after `HUB_AWS_ATTEMPT_TIMEOUT_MS`.
pub const AWS_SDK_ATTEMPTS: u32 = 3;

/// The most the SDK's standard retry waits between those attempts: up to 1 s, then up to 2 s
/// (full jitter on a backoff that doubles from 1 s).
const AWS_MAX_BACKOFFS: Duration = Duration::from_secs(3);

/// Worst-case time one DynamoDB or Secrets Manager call can take, the SDK's retries included,
/// when every attempt times out (`HUB_AWS_ATTEMPT_TIMEOUT_MS` each).
pub fn aws_call_budget(config: &Config) -> Duration {
    config.aws_attempt_timeout * AWS_SDK_ATTEMPTS + AWS_MAX_BACKOFFS
}

/// An order or cancel sent inline, while Ashby waits: a few quick tries, no jitter (one caller).
pub fn vendor_attempts(config: &Config) -> Backoff {
    Backoff {
        tries: config.vendor_attempts.max(1),
        first: config.vendor_backoff,
        cap: Duration::from_secs(2),
        jitter: false,
    }
}

/// When the delivery queue tries a delivery again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryBackoff {
    /// The wait after the first failure; it doubles per failure.
    pub base: Duration,
    /// No wait is longer than this (before `harder`).
    pub cap: Duration,
    /// A delivery undelivered this long after it was created is dead.
    pub max_age: Duration,
}

/// How much longer the queue waits when Ashby throttles the partner across all customers.
const HARDER: u32 = 4;

impl DeliveryBackoff {
    pub fn from_config(config: &Config) -> Self {
        Self {
            base: config.retry_base,
            cap: Duration::from_secs(3_600),
            max_age: config.delivery_max_age,
        }
    }

    /// What to do after the `attempt`-th failed attempt (1 = the first) at a delivery created at
    /// `created`: dead once it is older than the maximum age; otherwise again after an
    /// exponential wait (jitter in its upper half, so the order of retries is kept roughly),
    /// never before `retry_after`, four times longer when `harder`.
    pub fn next(
        &self,
        created: Timestamp,
        attempt: u32,
        now: Timestamp,
        retry_after: Option<Duration>,
        harder: bool,
        error: &str,
    ) -> Retry {
        if now.since(created) >= self.max_age {
            return Retry::Dead(format!(
                "undelivered after {} h; last error: {error}",
                self.max_age.as_secs() / 3_600
            ));
        }
        let capped = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.cap)
            .saturating_mul(if harder { HARDER } else { 1 });
        let ms = capped.as_millis() as u64;
        let jittered = Duration::from_millis(rand::rng().random_range(ms / 2..=ms.max(1)));
        Retry::At(now + jittered.max(retry_after.unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> DeliveryBackoff {
        DeliveryBackoff::from_config(&Config::default())
    }

    #[test]
    fn backoff_doubles_with_jitter_and_honours_retry_after() {
        let q = queue();
        let now = Timestamp::from_ms(1_000_000_000);
        let at = |n, ra, harder| match q.next(now, n, now, ra, harder, "x") {
            Retry::At(t) => t.since(now).as_millis() as i64,
            other => panic!("{other:?}"),
        };
        for _ in 0..50 {
            let first = at(1, None, false);
            assert!((15_000..=30_000).contains(&first), "{first}");
            let third = at(3, None, false);
            assert!((60_000..=120_000).contains(&third), "{third}");
            assert!(at(30, None, false) <= 3_600_000, "capped at an hour");
            assert!(at(1, Some(Duration::from_secs(600)), false) >= 600_000);
            assert!(
                at(1, None, true) >= 60_000,
                "partner-wide throttling backs off harder"
            );
        }
    }

    #[test]
    fn a_delivery_older_than_the_maximum_age_is_dead() {
        let q = queue();
        let created = Timestamp::EPOCH;
        let now = created + q.max_age;
        assert!(matches!(
            q.next(created, 5, now, None, false, "HTTP 500"),
            Retry::Dead(why) if why.contains("HTTP 500")
        ));
    }

    #[test]
    fn in_request_policies_are_bounded_well_inside_api_gateways_30_seconds() {
        assert!(CONFLICT.max_total_wait() < Duration::from_secs(2));
        assert!(CONTENTION.max_total_wait() < Duration::from_secs(1));
        let vendor = vendor_attempts(&Config::default());
        assert_eq!(vendor.tries, 2);
        assert_eq!(vendor.delay(1), Duration::from_millis(200));
        for n in 1..10 {
            assert!(CONFLICT.delay(n) <= CONFLICT.cap);
            assert!(!CONFLICT.delay(n).is_zero());
        }
    }
}
