//! Delivery of the `assessment.update`s owed to Ashby. Updates sit in the store's outbox until
//! Ashby accepts them; they go out strictly in sequence per assessment, each under a lease so that
//! two concurrent flushes never send the same update twice.

use std::time::Duration;

use crate::app::{App, now_ms};
use crate::ashby::AshbyError;
use crate::domain::{AssessmentId, Tenant};
use crate::secrets::SecretError;
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq)]
pub enum Flush {
    /// Nothing is left undelivered.
    Delivered,
    /// Another request holds the lease on the next update and is delivering it.
    InFlight,
    /// Ashby (or the key needed to call it) failed; the update stays queued.
    Failed(String),
}

#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How long a delivery lease lasts: longer than one Ashby call can take.
fn lease(app: &App) -> Duration {
    app.config.ashby_timeout + Duration::from_secs(5)
}

/// Sends this assessment's pending updates in order, stopping at the first failure.
pub async fn flush(app: &App, tenant: &Tenant, id: AssessmentId) -> Result<Flush, FlushError> {
    let pending = app.store.pending_updates(id).await?;
    if pending.is_empty() {
        return Ok(Flush::Delivered);
    }
    let key = match app.secrets.get(&app.names.ashby_api_key(&tenant.id)).await {
        Ok(k) => k.current,
        Err(SecretError::NotFound(_)) => {
            tracing::error!(tenant = %tenant.id, "no Ashby API key stored for this tenant");
            return Ok(Flush::Failed("no Ashby API key configured".into()));
        }
        Err(e) => return Ok(Flush::Failed(e.to_string())),
    };
    for update in pending {
        let now = now_ms();
        let until = now + lease(app).as_millis() as i64;
        if !app.store.claim_update(id, update.seq, now, until).await? {
            return Ok(Flush::InFlight);
        }
        let started = std::time::Instant::now();
        match app
            .ashby
            .update(&tenant.ashby_base_url, &key, &update.body)
            .await
        {
            Ok(()) => {
                app.store
                    .mark_update_delivered(id, update.seq, now_ms())
                    .await?;
                tracing::info!(
                    seq = update.seq,
                    ms = started.elapsed().as_millis() as u64,
                    "update delivered to Ashby"
                );
            }
            Err(e) => {
                let reason = e.to_string();
                if matches!(e, AshbyError::Unauthorized(_)) {
                    tracing::error!(seq = update.seq, error = %reason, "Ashby refused the tenant's API key");
                } else {
                    tracing::warn!(seq = update.seq, error = %reason, "update not delivered");
                }
                app.store.release_update(id, update.seq, &reason).await?;
                return Ok(Flush::Failed(reason));
            }
        }
    }
    Ok(Flush::Delivered)
}
