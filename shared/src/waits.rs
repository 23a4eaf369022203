//! How long a request waited on other services (DynamoDB, Secrets Manager, a vendor, Ashby),
//! accounted per request: the "answered" log line carries it beside the total, so that the hub's
//! own time is `total - waited` (the benchmark reads it; an operator can too). Waiting is counted
//! where it happens: an SDK interceptor times each attempt's transmission, and the HTTP clients
//! time their calls.

use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::config_bag::{Storable, StoreReplace};

tokio::task_local! {
    static WAITED: Cell<Duration>;
}

/// Runs `fut` with an account of its own; returns its output and the time it spent waiting.
pub async fn account<F: Future>(fut: F) -> (F::Output, Duration) {
    WAITED
        .scope(Cell::new(Duration::ZERO), async move {
            let out = fut.await;
            (out, WAITED.with(Cell::get))
        })
        .await
}

/// Adds `d` to the current request's account, if there is one.
fn add(d: Duration) {
    let _ = WAITED.try_with(|w| w.set(w.get() + d));
}

/// Awaits `fut`, counting its time as waiting.
pub async fn waiting<F: Future>(fut: F) -> F::Output {
    let started = Instant::now();
    let out = fut.await;
    add(started.elapsed());
    out
}

/// Times each attempt's transmission (request sent to response headers in) as waiting; retry
/// back-off and the SDK's own work are the hub's time.
#[derive(Debug)]
pub struct WaitInterceptor;

#[derive(Debug, Clone)]
struct TransmitStarted(Instant);

impl Storable for TransmitStarted {
    type Storer = StoreReplace<Self>;
}

impl Intercept for WaitInterceptor {
    fn name(&self) -> &'static str {
        "WaitInterceptor"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        cfg.interceptor_state()
            .store_put(TransmitStarted(Instant::now()));
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        if let Some(TransmitStarted(started)) = cfg.load::<TransmitStarted>() {
            add(started.elapsed());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_awaited_calls_count_and_only_inside_an_account() {
        let ((), waited) = account(async {
            waiting(tokio::time::sleep(Duration::from_millis(10))).await;
            // Work that is not a call to another service is the hub's own.
            tokio::time::sleep(Duration::from_millis(300)).await;
            waiting(tokio::time::sleep(Duration::from_millis(10))).await;
        })
        .await;
        // Bounds far apart, so that a slow machine cannot blur them: both calls count, the
        // 300 ms of own work does not.
        assert!(waited >= Duration::from_millis(20), "{waited:?}");
        assert!(waited < Duration::from_millis(300), "{waited:?}");
        // Outside an account, waiting is not counted anywhere (and does not panic).
        waiting(tokio::time::sleep(Duration::from_millis(1))).await;
    }
}
