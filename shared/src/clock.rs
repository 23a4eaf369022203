//! The one wall clock, injected: the use cases, the delivery queue and the stores read the time
//! only through a [`Clock`], so that a test can set it. [`Timestamp`] is the core's one type for
//! an instant (Unix milliseconds); seconds appear only where a protocol or DynamoDB's TTL wants
//! them, through [`Timestamp::as_secs`].

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// An instant, as Unix milliseconds. Arithmetic saturates: no instant the hub handles comes near
/// the ends of `i64`, and saturation keeps a corrupt record from panicking a request.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch: "never" for a lease, "not yet" for an update time.
    pub const EPOCH: Self = Self(0);
    /// Later than any real instant: "everything" as an upper bound of a query.
    pub const MAX: Self = Self(i64::MAX);

    pub const fn from_ms(ms: i64) -> Self {
        Self(ms)
    }
    pub const fn as_ms(self) -> i64 {
        self.0
    }
    /// Whole Unix seconds (rounded down): Standard Webhooks timestamps and DynamoDB TTLs.
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }
    pub fn plus(self, d: Duration) -> Self {
        Self(self.0.saturating_add(duration_ms(d)))
    }
    pub fn minus(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(duration_ms(d)))
    }
    /// The next millisecond: Ashby orders an assessment's updates by a strictly increasing
    /// `timestamp`.
    pub fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
    /// How long after `earlier` this is; zero if it is not after it.
    pub fn since(self, earlier: Self) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0).max(0) as u64)
    }
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl std::ops::Add<Duration> for Timestamp {
    type Output = Self;
    fn add(self, d: Duration) -> Self {
        self.plus(d)
    }
}

impl std::ops::Sub<Duration> for Timestamp {
    type Output = Self;
    fn sub(self, d: Duration) -> Self {
        self.minus(d)
    }
}

impl std::str::FromStr for Timestamp {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({}ms)", self.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where the time comes from. Implementations are cheap to call and safe to share.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system's wall clock: production, the local hub and most tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(duration_ms)
                .unwrap_or_default(),
        )
    }
}

/// A clock that moves only when told: tests of leases, backoff and maximum ages.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn at(t: Timestamp) -> Self {
        Self(AtomicI64::new(t.0))
    }
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(duration_ms(d), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        assert_eq!(Timestamp::MAX.plus(Duration::from_secs(1)), Timestamp::MAX);
        assert_eq!(
            Timestamp::from_ms(5).since(Timestamp::from_ms(9)),
            Duration::ZERO
        );
        assert_eq!(
            Timestamp::from_ms(9_000).since(Timestamp::from_ms(1_500)),
            Duration::from_millis(7_500)
        );
        assert_eq!(Timestamp::from_ms(-1).as_secs(), -1);
        assert_eq!(Timestamp::from_ms(1_999).as_secs(), 1);
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = ManualClock::at(Timestamp::from_ms(1_000));
        assert_eq!(c.now(), Timestamp::from_ms(1_000));
        c.advance(Duration::from_secs(2));
        assert_eq!(c.now(), Timestamp::from_ms(3_000));
        c.set(Timestamp::EPOCH);
        assert_eq!(c.now(), Timestamp::EPOCH);
    }

    #[test]
    fn the_system_clock_is_after_2020() {
        assert!(SystemClock.now() > Timestamp::from_ms(1_577_836_800_000));
    }
}
