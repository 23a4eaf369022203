//! The durable delivery queue: every message the hub owes Ashby (`assessment.update`) or a vendor
//! (orders, cancels) is a `Delivery` written in the same atomic write as the state change that
//! owes it. It is tried at once, and retried by the scheduled run (`run_due`) with exponential
//! backoff and jitter, honouring `Retry-After`, until the receiver accepts it, an operator must
//! act (parked), or it is older than the maximum age (dead, kept for redelivery).
//!
//! Invariants: deliveries to one party for one assessment go out in sequence order, and only the
//! holder of a delivery's lease sends it, so two runs never send the same delivery at once; a
//! delivery the receiver accepted is settled and never sent again.

use std::collections::HashSet;
use std::time::Duration;

use rand::Rng;
use serde::Serialize;

use crate::app::{App, now_ms};
use crate::ashby::{AshbyError, UpdateRequest};
use crate::domain::{
    Assessment, AssessmentId, Delivery, DeliveryKind, DeliveryState, Status, Vendor,
};
use crate::metrics::{Target, names};
use crate::secrets::SecretError;
use crate::store::{Change, ChangeOutcome, ChangeWrite, Retry, StoreError, StoreResult};
use crate::vendor::{VendorError, VendorReply, cancel_message_id, order_message_id};

/// Who a flush works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    Ashby,
    Vendor,
    Both,
}

impl Party {
    fn covers(self, kind: DeliveryKind) -> bool {
        match self {
            Self::Both => true,
            Self::Ashby => !kind.to_vendor(),
            Self::Vendor => kind.to_vendor(),
        }
    }
}

/// What one attempt at a claimed delivery came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Delivered,
    /// The vendor refused the order (422); its words, for the recruiter.
    Rejected(String),
    /// Failed; retried later, parked or dead (see the delivery's state).
    Failed {
        error: String,
        retry: Retry,
        /// Ashby throttled the partner across all customers: stop this run.
        partner_throttled: bool,
    },
}

/// Counts from one flush or one scheduled run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub delivered: u32,
    pub retried: u32,
    pub parked: u32,
    pub dead: u32,
    /// Deliveries skipped because another request held their lease.
    pub in_flight: u32,
    /// Age of the oldest delivery still pending after the run (scheduled runs only).
    pub oldest_pending_ms: i64,
    pub partner_throttled: bool,
}

impl Report {
    fn add(&mut self, other: &Report) {
        self.delivered += other.delivered;
        self.retried += other.retried;
        self.parked += other.parked;
        self.dead += other.dead;
        self.in_flight += other.in_flight;
        self.partner_throttled |= other.partner_throttled;
    }

    fn count(&mut self, attempt: &Attempt) {
        match attempt {
            Attempt::Delivered | Attempt::Rejected(_) => self.delivered += 1,
            Attempt::Failed { retry, .. } => match retry {
                Retry::At(_) => self.retried += 1,
                Retry::Park(_) => self.parked += 1,
                Retry::Dead(_) => self.dead += 1,
            },
        }
    }
}

/// Whether a vendor's answer to an order must also be told to Ashby. A start request answers
/// Ashby itself; an order placed later from the queue must say "Started" (or why not) by update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announce {
    No,
    Yes,
}

/// How long a lease on a delivery lasts: longer than one attempt can take, and never shorter than
/// the configured floor (which outlasts a Lambda invocation), so only a dead holder is overtaken.
pub fn lease(app: &App) -> Duration {
    (app.config
        .ashby_timeout
        .max(app.config.vendor_call_budget())
        + Duration::from_secs(5))
    .max(app.config.delivery_lease)
}

/// When to try again after the `attempt`-th failure: exponential from `retry_base`, capped at an
/// hour, full jitter in its upper half, never before `retry_after`; 4× when `harder`. Dead once
/// the delivery is older than the maximum age.
pub fn retry_for(
    app: &App,
    created_ms: i64,
    attempt: u32,
    now: i64,
    retry_after: Option<Duration>,
    harder: bool,
    error: &str,
) -> Retry {
    let max_age = app.config.delivery_max_age.as_millis() as i64;
    if now - created_ms >= max_age {
        return Retry::Dead(format!(
            "undelivered after {} h; last error: {error}",
            app.config.delivery_max_age.as_secs() / 3_600
        ));
    }
    let base = app.config.retry_base.as_millis() as i64;
    let exp = base.saturating_mul(1_i64 << attempt.saturating_sub(1).min(20));
    let capped = exp
        .min(3_600_000)
        .saturating_mul(if harder { 4 } else { 1 });
    let jittered = rand::rng().random_range(capped / 2..=capped.max(1));
    let floor = retry_after.map(|d| d.as_millis() as i64).unwrap_or(0);
    Retry::At(now + jittered.max(floor))
}

/// Tries one delivery whose lease the caller holds, and records the outcome.
pub async fn attempt(
    app: &App,
    assessment: &Assessment,
    delivery: &Delivery,
    vendor: Option<&Vendor>,
    announce: Announce,
) -> StoreResult<Attempt> {
    let outcome = match delivery.kind {
        DeliveryKind::AshbyUpdate => send_to_ashby(app, assessment, delivery).await?,
        DeliveryKind::VendorOrder | DeliveryKind::VendorCancel => {
            send_to_vendor(app, assessment, delivery, vendor, announce).await?
        }
    };
    if delivery.kind == DeliveryKind::AshbyUpdate {
        // Parked deliveries count with the dead ones: both wait for an operator.
        let name = match &outcome {
            Attempt::Delivered | Attempt::Rejected(_) => names::ASHBY_DELIVERIES_SUCCEEDED,
            Attempt::Failed {
                retry: Retry::At(_),
                ..
            } => names::ASHBY_DELIVERIES_RETRIED,
            Attempt::Failed { .. } => names::ASHBY_DELIVERIES_DEAD,
        };
        app.metrics.count(name, 1);
    }
    if let Attempt::Failed { error, retry, .. } = &outcome {
        app.store
            .delivery_failed(assessment.id, delivery.seq, error, retry)
            .await?;
        match retry {
            Retry::At(_) => tracing::warn!(
                seq = delivery.seq,
                kind = delivery.kind.as_str(),
                error = error.as_str(),
                "delivery failed; will retry"
            ),
            Retry::Park(why) | Retry::Dead(why) => tracing::error!(
                seq = delivery.seq,
                kind = delivery.kind.as_str(),
                state = if matches!(retry, Retry::Park(_)) {
                    "parked"
                } else {
                    "dead"
                },
                reason = why.as_str(),
                "delivery stopped; an operator must redeliver it"
            ),
        }
        if matches!(retry, Retry::Dead(_)) && delivery.kind == DeliveryKind::VendorOrder {
            give_up_order(app, assessment.id).await?;
        }
    }
    Ok(outcome)
}

async fn send_to_ashby(app: &App, a: &Assessment, d: &Delivery) -> StoreResult<Attempt> {
    let now = now_ms();
    // `harder` is Ashby throttling the partner across customers: back off more, and stop the run.
    let fail = |error: String, retry_after: Option<Duration>, harder: bool| Attempt::Failed {
        retry: retry_for(
            app,
            d.created_ms,
            d.attempts + 1,
            now,
            retry_after,
            harder,
            &error,
        ),
        error,
        partner_throttled: harder,
    };
    let park = |why: String| Attempt::Failed {
        error: why.clone(),
        retry: Retry::Park(why),
        partner_throttled: false,
    };
    let Some(tenant) = app.store.tenant(&a.tenant_id).await? else {
        return Ok(park("the assessment's tenant no longer exists".into()));
    };
    let key = match app
        .secrets
        .current(&app.names.ashby_api_key(&tenant.id))
        .await
    {
        Ok(k) => k,
        Err(SecretError::NotFound(_)) => {
            return Ok(park("no Ashby API key is stored for this tenant".into()));
        }
        Err(e) => return Ok(fail(e.to_string(), None, false)),
    };
    let started = std::time::Instant::now();
    let result = app
        .ashby
        .update(&tenant.ashby_base_url, &key, &d.body)
        .await;
    app.metrics
        .latency_ms(Target::Ashby, started.elapsed().as_secs_f64() * 1e3);
    Ok(match result {
        Ok(()) => {
            app.store.delivery_succeeded(a.id, d.seq).await?;
            tracing::info!(seq = d.seq, "update delivered to Ashby");
            Attempt::Delivered
        }
        Err(e @ AshbyError::Unauthorized(_)) => park(format!(
            "{e}: store a valid key with Candidates write, then redeliver"
        )),
        Err(
            ref e @ AshbyError::RateLimited {
                retry_after,
                partner_wide,
            },
        ) => fail(e.to_string(), retry_after, partner_wide),
        Err(e) => fail(e.to_string(), None, false),
    })
}

/// `known` is the assessment's vendor as the caller just read it (the start), saving a read.
async fn send_to_vendor(
    app: &App,
    a: &Assessment,
    d: &Delivery,
    known: Option<&Vendor>,
    announce: Announce,
) -> StoreResult<Attempt> {
    let now = now_ms();
    if d.kind == DeliveryKind::VendorOrder && a.status != Status::Ordering {
        // Cancelled (or otherwise settled) before the order ever went out: withdraw it.
        app.store.delivery_succeeded(a.id, d.seq).await?;
        tracing::info!(seq = d.seq, "order withdrawn before it was sent");
        return Ok(Attempt::Delivered);
    }
    let fail = |error: String| Attempt::Failed {
        retry: retry_for(app, d.created_ms, d.attempts + 1, now, None, false, &error),
        error,
        partner_throttled: false,
    };
    let read;
    let vendor = match known.filter(|v| v.id == a.vendor_id) {
        Some(v) => v,
        None => {
            read = app.store.vendor(&a.vendor_id).await?;
            let Some(v) = &read else {
                let why = "the assessment's vendor no longer exists".to_owned();
                return Ok(Attempt::Failed {
                    error: why.clone(),
                    retry: Retry::Park(why),
                    partner_throttled: false,
                });
            };
            v
        }
    };
    let secret = match app
        .secrets
        .current(&app.names.signing_secret(&vendor.id))
        .await
    {
        Ok(s) => s,
        Err(e) => return Ok(fail(e.to_string())),
    };
    let msg_id = match d.kind {
        DeliveryKind::VendorOrder => order_message_id(a.id),
        _ => cancel_message_id(a.id),
    };
    // Inline (start) calls use the configured attempts; the queue is its own retry.
    let tries = match announce {
        Announce::No => app.config.vendor_attempts,
        Announce::Yes => 1,
    };
    let started = std::time::Instant::now();
    let reply = app
        .vendors
        .send_tries(
            &vendor.order_url,
            &secret,
            &msg_id,
            d.body.as_bytes(),
            tries,
        )
        .await;
    app.metrics
        .latency_ms(Target::Vendor, started.elapsed().as_secs_f64() * 1e3);
    if d.kind == DeliveryKind::VendorOrder {
        app.metrics.count(
            match &reply {
                Ok(VendorReply::Accepted { .. }) => names::VENDOR_ORDERS_ACCEPTED,
                Ok(VendorReply::Rejected { .. }) => names::VENDOR_ORDERS_REJECTED,
                Err(_) => names::VENDOR_ORDERS_FAILED,
            },
            1,
        );
    }
    match (d.kind, reply) {
        (
            DeliveryKind::VendorOrder,
            Ok(VendorReply::Accepted {
                vendor_reference, ..
            }),
        ) => {
            order_settled(
                app,
                a.id,
                d.seq,
                announce,
                OrderAnswer::Accepted(vendor_reference),
            )
            .await?;
            tracing::info!("vendor accepted the order");
            Ok(Attempt::Delivered)
        }
        (DeliveryKind::VendorOrder, Ok(VendorReply::Rejected { message })) => {
            order_settled(
                app,
                a.id,
                d.seq,
                announce,
                OrderAnswer::Rejected(message.clone()),
            )
            .await?;
            tracing::info!("vendor rejected the order");
            Ok(Attempt::Rejected(message))
        }
        // A cancel the vendor took, never had (404), or will not do (422): nothing more to send.
        (_, Ok(_)) | (DeliveryKind::VendorCancel, Err(VendorError::Refused(404))) => {
            app.store.delivery_succeeded(a.id, d.seq).await?;
            Ok(Attempt::Delivered)
        }
        (_, Err(e @ VendorError::UrlNotAllowed(_))) => Ok(Attempt::Failed {
            error: e.to_string(),
            retry: Retry::Park(format!("{e}; fix the vendor's order_url, then redeliver")),
            partner_throttled: false,
        }),
        (_, Err(e)) => Ok(fail(e.to_string())),
    }
}

enum OrderAnswer {
    Accepted(Option<String>),
    Rejected(String),
}

/// Records the vendor's answer to an order and settles the order delivery in one write; with
/// `Announce::Yes`, also queues the Ashby update that tells the recruiter.
async fn order_settled(
    app: &App,
    id: AssessmentId,
    seq: u64,
    announce: Announce,
    answer: OrderAnswer,
) -> StoreResult<()> {
    for _ in 0..8 {
        let Some(a) = app.store.assessment(id).await? else {
            return Ok(());
        };
        let now = now_ms();
        let ts = now.max(a.last_update_ms + 1);
        let change = match (&answer, a.status) {
            // A callback that overtook the acknowledgement already moved it on: keep that.
            (_, s) if s != Status::Ordering => None,
            (OrderAnswer::Accepted(reference), _) => {
                let label = crate::handlers::start_assessment::STARTED_LABEL;
                Some(Change {
                    expected_version: a.version,
                    expected_update_seq: a.update_seq,
                    status: Status::Ordered,
                    status_label: Some(label.into()),
                    rejection_message: None,
                    vendor_reference: reference.clone(),
                    now_ms: now,
                    deliveries: match announce {
                        Announce::No => vec![],
                        Announce::Yes => {
                            vec![ashby_delivery(&UpdateRequest::status(id, ts, label), now)?]
                        }
                    },
                    update_ms: (announce == Announce::Yes).then_some(ts),
                })
            }
            (OrderAnswer::Rejected(message), _) => Some(Change {
                expected_version: a.version,
                expected_update_seq: a.update_seq,
                status: Status::Rejected,
                status_label: None,
                rejection_message: Some(message.clone()),
                vendor_reference: None,
                now_ms: now,
                deliveries: match announce {
                    Announce::No => vec![],
                    Announce::Yes => vec![ashby_delivery(
                        &UpdateRequest::cancelled(
                            id,
                            ts,
                            "Not accepted by the provider",
                            message,
                            vec![],
                        ),
                        now,
                    )?],
                },
                update_ms: (announce == Announce::Yes).then_some(ts),
            }),
        };
        let write = ChangeWrite {
            assessment_id: id,
            marker: None,
            change,
            settle: Some(seq),
        };
        match app.store.apply(&write).await? {
            ChangeOutcome::Applied | ChangeOutcome::Duplicate => return Ok(()),
            ChangeOutcome::Conflict => {
                let still_open = app
                    .store
                    .open_deliveries(id)
                    .await?
                    .iter()
                    .any(|d| d.seq == seq);
                if !still_open {
                    return Ok(());
                }
            }
        }
    }
    Err(StoreError::Unavailable(
        "too many concurrent changes".into(),
    ))
}

/// The order could not be placed within the maximum age: the assessment failed, and Ashby is told.
async fn give_up_order(app: &App, id: AssessmentId) -> StoreResult<()> {
    for _ in 0..8 {
        let Some(a) = app.store.assessment(id).await? else {
            return Ok(());
        };
        if a.status != Status::Ordering {
            return Ok(());
        }
        let now = now_ms();
        let ts = now.max(a.last_update_ms + 1);
        let update = UpdateRequest::cancelled(
            id,
            ts,
            "Failed",
            "The provider could not be reached, so the assessment was not ordered.",
            vec![],
        );
        let write = ChangeWrite {
            assessment_id: id,
            marker: None,
            change: Some(Change {
                expected_version: a.version,
                expected_update_seq: a.update_seq,
                status: Status::Failed,
                status_label: None,
                rejection_message: None,
                vendor_reference: None,
                now_ms: now,
                deliveries: vec![ashby_delivery(&update, now)?],
                update_ms: Some(ts),
            }),
            settle: None,
        };
        if app.store.apply(&write).await? == ChangeOutcome::Applied {
            return Ok(());
        }
    }
    Err(StoreError::Unavailable(
        "too many concurrent changes".into(),
    ))
}

/// A new Ashby update delivery, due now.
pub fn ashby_delivery(update: &UpdateRequest, now: i64) -> StoreResult<crate::domain::NewDelivery> {
    Ok(crate::domain::NewDelivery {
        kind: DeliveryKind::AshbyUpdate,
        body: serde_json::to_string(update)
            .map_err(|e| StoreError::Corrupt(format!("serialising an update: {e}")))?,
        next_attempt_ms: now,
        leased_until_ms: 0,
        expires_at_s: None,
    })
}

/// Sends this assessment's owed deliveries to `party`, in order per party, stopping a party at
/// its first failure, parked delivery or delivery not yet due (unless `due_now`). An order
/// settled with an announcement queues an Ashby update: a second pass delivers it at once.
/// `known` is a snapshot of the assessment the caller already holds, if any: it saves a read
/// when only Ashby updates or a vendor cancel are owed.
pub async fn flush(
    app: &App,
    id: AssessmentId,
    known: Option<&Assessment>,
    party: Party,
    announce: Announce,
    due_now: bool,
) -> StoreResult<Report> {
    let mut report = Report::default();
    for _ in 0..2 {
        let (pass, followups) = flush_pass(app, id, known, party, announce, due_now).await?;
        report.add(&pass);
        if !followups || pass.partner_throttled {
            break;
        }
    }
    Ok(report)
}

async fn flush_pass(
    app: &App,
    id: AssessmentId,
    known: Option<&Assessment>,
    party: Party,
    announce: Announce,
    due_now: bool,
) -> StoreResult<(Report, bool)> {
    let mut report = Report::default();
    let mut followups = false;
    let open = app.store.open_deliveries(id).await?;
    if open.is_empty() {
        return Ok((report, false));
    }
    // The assessment is read only when a delivery needs it. An Ashby update or a vendor cancel
    // needs only ids that never change (tenant, vendor), so any snapshot does (the caller's
    // `known` one included); an order's effect depends on the latest status (it is withdrawn
    // once the assessment was cancelled), so it is read after the claim.
    let mut assessment: Option<Assessment> = known.cloned();
    let mut blocked: HashSet<bool> = HashSet::new();
    for d in open.into_iter().filter(|d| party.covers(d.kind)) {
        let lane = d.kind.to_vendor();
        if blocked.contains(&lane) {
            continue;
        }
        match d.state {
            DeliveryState::Dead(_) | DeliveryState::Delivered => continue,
            DeliveryState::Parked(_) => {
                blocked.insert(lane);
                continue;
            }
            DeliveryState::Pending => {}
        }
        let now = now_ms();
        if !due_now && d.next_attempt_ms > now {
            blocked.insert(lane);
            continue;
        }
        if !lane && assessment.is_none() {
            assessment = app.store.assessment(id).await?;
            if assessment.is_none() {
                break;
            }
        }
        let until = now + lease(app).as_millis() as i64;
        if !app.store.claim_delivery(id, d.seq, now, until).await? {
            report.in_flight += 1;
            blocked.insert(lane);
            continue;
        }
        if (d.kind == DeliveryKind::VendorOrder || assessment.is_none())
            && let Some(a) = app.store.assessment(id).await?
        {
            assessment = Some(a);
        }
        let Some(current) = &assessment else {
            break;
        };
        let outcome = attempt(app, current, &d, None, announce).await?;
        report.count(&outcome);
        followups |= d.kind == DeliveryKind::VendorOrder
            && announce == Announce::Yes
            && matches!(outcome, Attempt::Delivered | Attempt::Rejected(_));
        if let Attempt::Failed {
            partner_throttled, ..
        } = outcome
        {
            report.partner_throttled |= partner_throttled;
            blocked.insert(lane);
            if partner_throttled {
                break;
            }
        }
    }
    Ok((report, followups))
}

/// The scheduled run: every due delivery, oldest first, in order per assessment and party, until
/// `budget` is spent (the rest waits for the next run). Stops early when Ashby throttles the
/// partner as a whole.
pub async fn run_due(app: &App, limit: usize, budget: Duration) -> StoreResult<Report> {
    let started = std::time::Instant::now();
    let now = now_ms();
    let due = app.store.due_deliveries(now, limit).await?;
    let mut report = Report::default();
    let mut seen = HashSet::new();
    for d in &due {
        if !seen.insert(d.assessment_id) {
            continue;
        }
        if started.elapsed() >= budget {
            tracing::info!("run budget spent; the rest waits for the next run");
            break;
        }
        let r = flush(
            app,
            d.assessment_id,
            None,
            Party::Both,
            Announce::Yes,
            false,
        )
        .await?;
        report.add(&r);
        if r.partner_throttled {
            tracing::warn!("Ashby throttles the partner across customers; stopping this run");
            break;
        }
    }
    // Nothing was due at `now`, so nothing pending is older than that: the age is 0 without a
    // second read (the common case: this runs every minute).
    if !due.is_empty()
        && let Some(oldest) = app.store.due_deliveries(i64::MAX, 1).await?.first()
    {
        report.oldest_pending_ms = (now - oldest.next_attempt_ms).max(0);
    }
    app.metrics.age_seconds(
        names::OLDEST_PENDING_DELIVERY_AGE_SECONDS,
        report.oldest_pending_ms as f64 / 1e3,
    );
    tracing::info!(
        due = due.len(),
        delivered = report.delivered,
        retried = report.retried,
        parked = report.parked,
        dead = report.dead,
        "scheduled delivery run"
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::StaticSecrets;
    use crate::store::MemoryStore;
    use std::sync::Arc;

    fn app() -> App {
        App::new(
            crate::Config::default(),
            Arc::new(MemoryStore::new()),
            Arc::new(StaticSecrets::new()),
        )
        .expect("app")
    }

    #[test]
    fn backoff_doubles_with_jitter_and_honours_retry_after() {
        let app = app();
        let now = 1_000_000_000;
        let at = |n, ra, harder| match retry_for(&app, now, n, now, ra, harder, "x") {
            Retry::At(t) => t - now,
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
        let app = app();
        let created = 0;
        let now = app.config.delivery_max_age.as_millis() as i64;
        assert!(matches!(
            retry_for(&app, created, 5, now, None, false, "HTTP 500"),
            Retry::Dead(why) if why.contains("HTTP 500")
        ));
    }
}
