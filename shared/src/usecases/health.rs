//! Tenant health: what the hub records of a tenant's connection while it works. The last
//! authenticated ATS call (at most one write per tenant per `CALL_RECORD_INTERVAL`, decided from
//! the tenant read the authentication made anyway, so a warm call makes no write), the end of a
//! token rotation on the first call with the new token, and the outcome of updates sent to the
//! ATS. Recording never fails a request: a store error is logged and the request goes on.

use crate::app::App;
use crate::domain::connect::{CALL_RECORD_INTERVAL, DELIVERY_RECORD_INTERVAL};
use crate::domain::{AtsCall, DeliveryHealth, DeliveryReport, TokenHash};
use crate::metrics::names;
use crate::ports::Account;

/// The tenant of `account` made an authenticated call to `route` with `token`.
pub async fn note_call(app: &App, account: &Account, token: &TokenHash, route: &str) {
    let id = &account.tenant.id;
    if account.health.pending_token.as_ref() == Some(token) {
        match app.store.complete_rotation(id, token).await {
            Ok(true) => tracing::info!("the ATS called with the new trigger token; rotation done"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not end a token rotation"),
        }
    }
    let now = app.clock.now();
    let stale_before = now - CALL_RECORD_INTERVAL;
    let fresh = account
        .health
        .last_call
        .as_ref()
        .is_some_and(|c| c.at_ms >= stale_before);
    if fresh {
        return;
    }
    let call = AtsCall {
        at_ms: now,
        route: route.chars().take(64).collect(),
    };
    if let Err(e) = app.store.record_ats_call(id, &call, stale_before).await {
        tracing::warn!(error = %e, "could not record the ATS call on the tenant");
    }
}

/// What became of an update to the tenant's ATS: delivered, refused (the key), or given up on.
/// Written when the outcome changes, or when the same outcome is older than
/// `DELIVERY_RECORD_INTERVAL`; a refusal or a dead update is counted as needing attention.
pub async fn note_delivery(app: &App, account: &Account, outcome: DeliveryHealth, detail: &str) {
    let now = app.clock.now();
    let stale_before = now - DELIVERY_RECORD_INTERVAL;
    let unchanged = account
        .health
        .last_delivery
        .as_ref()
        .is_some_and(|d| d.outcome == outcome && d.at_ms >= stale_before);
    if unchanged {
        return;
    }
    let report = DeliveryReport {
        at_ms: now,
        outcome,
        detail: detail.chars().take(200).collect(),
    };
    match app
        .store
        .record_delivery(&account.tenant.id, &report, stale_before)
        .await
    {
        Ok(true) if outcome != DeliveryHealth::Delivered => {
            app.metrics.count(names::TENANTS_NEEDING_ATTENTION, 1);
            tracing::warn!(
                outcome = outcome.as_str(),
                "the tenant needs attention: its ATS refused an update or one was given up on"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not record the delivery on the tenant"),
    }
}
