//! The durable delivery queue's transport: every message the hub owes the ATS or a vendor (an
//! update, an order, a cancel) is a `Delivery` written in the same atomic write as the state
//! change that owes it. This module claims a delivery's lease, sends it through the ATS or vendor
//! port, and records the outcome with `retry::DeliveryBackoff`; what a vendor's answer to an order
//! does to the assessment is the order use case's (`super::order`).
//!
//! Invariants: deliveries to one party for one assessment go out in sequence order (one lane per
//! party; report files have a lane of their own and no order among them), and only the holder of a delivery's lease sends it, so two runs never send the same
//! delivery at once; a delivery the receiver accepted is settled and never sent again.

use std::time::Duration;

use serde::Serialize;

use super::order::{self, Announce};
use crate::app::App;
use crate::ats::AtsError;
use crate::clock::Timestamp;
use crate::domain::{
    Assessment, AssessmentId, Delivery, DeliveryHealth, DeliveryKind, DeliveryState, FileDelivery,
    OrderAnswer, Status, Vendor,
};
use crate::metrics::{Target, names};
use crate::ports::{Retry, StoreResult};
use crate::retry::{self, Backoff, DeliveryBackoff};
use crate::vendors::{FetchError, Message, VendorError, VendorReply};

/// Who a delivery goes to. Each party's deliveries of one assessment go out in order; the two
/// parties are independent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Ats,
    Vendor,
    /// Report files for the ATS: a lane of their own, so a file that fails never holds back
    /// an update; and unordered, so it never holds back another file either.
    Files,
}

impl Lane {
    pub fn of(kind: DeliveryKind) -> Self {
        match kind {
            DeliveryKind::AtsUpdate | DeliveryKind::AtsPatch => Self::Ats,
            DeliveryKind::AtsFile => Self::Files,
            DeliveryKind::VendorOrder | DeliveryKind::VendorCancel => Self::Vendor,
        }
    }
}

/// Which lanes a flush works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lanes {
    Only(Lane),
    Both,
}

impl Lanes {
    fn cover(self, lane: Lane) -> bool {
        match self {
            Self::Both => true,
            Self::Only(l) => l == lane,
        }
    }
}

/// Whether a flush sends deliveries not due yet (a request that just queued them sends at
/// once) or only due ones (the scheduled run honours each one's backoff).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Now,
    WhenDue,
}

/// What one flush of one assessment's deliveries does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flush {
    pub lanes: Lanes,
    pub announce: Announce,
    pub due: Due,
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
        /// The ATS throttled the partner across all customers: stop this run.
        partner_throttled: bool,
    },
}

impl Attempt {
    fn failed(error: String, retry: Retry) -> Self {
        Self::Failed {
            error,
            retry,
            partner_throttled: false,
        }
    }

    fn parked(why: String) -> Self {
        Self::failed(why.clone(), Retry::Park(why))
    }
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

/// How long a lease on a delivery lasts: longer than one attempt can take, and never shorter than
/// the configured floor (which outlasts a Lambda invocation), so only a dead holder is overtaken.
pub fn lease(app: &App) -> Duration {
    (app.config
        .ashby_timeout
        .max(app.config.vendor_call_budget())
        + Duration::from_secs(5))
    .max(app.config.delivery_lease)
}

/// The vendor call of one attempt: inline (a start, where Ashby waits) uses the configured quick
/// tries; from the queue, one try, since the queue is its own retry (see `crate::retry`).
fn vendor_tries(app: &App, announce: Announce) -> Backoff {
    match announce {
        Announce::No => retry::vendor_attempts(&app.config),
        Announce::Yes => Backoff {
            tries: 1,
            ..retry::vendor_attempts(&app.config)
        },
    }
}

/// Tries one delivery whose lease the caller holds, and records the outcome. `vendor` is the
/// assessment's vendor if the caller already read it (a start), saving a read.
pub async fn attempt(
    app: &App,
    assessment: &Assessment,
    delivery: &Delivery,
    vendor: Option<&Vendor>,
    announce: Announce,
) -> StoreResult<Attempt> {
    let outcome = match Lane::of(delivery.kind) {
        Lane::Ats => send_to_ats(app, assessment, delivery).await?,
        Lane::Files => send_file(app, assessment, delivery).await?,
        Lane::Vendor => send_to_vendor(app, assessment, delivery, vendor, announce).await?,
    };
    // Parked deliveries count with the dead ones: both wait for an operator.
    let counted = match delivery.kind {
        DeliveryKind::AtsUpdate => Some([
            names::ASHBY_DELIVERIES_SUCCEEDED,
            names::ASHBY_DELIVERIES_RETRIED,
            names::ASHBY_DELIVERIES_DEAD,
        ]),
        DeliveryKind::AtsPatch => Some([
            names::GREENHOUSE_PATCHES_SUCCEEDED,
            names::GREENHOUSE_PATCHES_RETRIED,
            names::GREENHOUSE_PATCHES_DEAD,
        ]),
        DeliveryKind::AtsFile => Some([
            names::ASHBY_FILES_UPLOADED,
            names::ASHBY_FILES_RETRIED,
            names::ASHBY_FILES_DEAD,
        ]),
        DeliveryKind::VendorOrder | DeliveryKind::VendorCancel => None,
    };
    if let Some([succeeded, retried, stopped]) = counted {
        let name = match &outcome {
            Attempt::Delivered | Attempt::Rejected(_) => succeeded,
            Attempt::Failed {
                retry: Retry::At(_),
                ..
            } => retried,
            Attempt::Failed { .. } => stopped,
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
            order::give_up(app, assessment.id).await?;
        }
    }
    Ok(outcome)
}

fn backoff_after(
    app: &App,
    d: &Delivery,
    now: Timestamp,
    retry_after: Option<Duration>,
    harder: bool,
    error: &str,
) -> Retry {
    DeliveryBackoff::from_config(&app.config).next(
        d.created_ms,
        d.attempts + 1,
        now,
        retry_after,
        harder,
        error,
    )
}

async fn send_to_ats(app: &App, a: &Assessment, d: &Delivery) -> StoreResult<Attempt> {
    let Some(account) = app.store.account(&a.tenant_id).await? else {
        return Ok(Attempt::parked(
            "the assessment's tenant no longer exists".into(),
        ));
    };
    let attempt = send_update(app, a, d, &account.tenant).await?;
    let health = match &attempt {
        Attempt::Delivered => Some((DeliveryHealth::Delivered, "delivered")),
        Attempt::Failed {
            retry: Retry::Park(why),
            ..
        } => Some((DeliveryHealth::Refused, why.as_str())),
        Attempt::Failed {
            retry: Retry::Dead(why),
            ..
        } => Some((DeliveryHealth::Dead, why.as_str())),
        _ => None,
    };
    if let Some((outcome, detail)) = health {
        super::health::note_delivery(app, &account, outcome, detail).await;
    }
    Ok(attempt)
}

/// One try at an update (Ashby's `assessment.update`, Greenhouse's `PATCH`).
async fn send_update(
    app: &App,
    a: &Assessment,
    d: &Delivery,
    tenant: &crate::domain::Tenant,
) -> StoreResult<Attempt> {
    let started = std::time::Instant::now();
    let (result, target, no_key) = match d.kind {
        DeliveryKind::AtsPatch => (
            app.greenhouse.patch(tenant, &d.body).await,
            Target::Greenhouse,
            "no Greenhouse partner key is stored for this tenant",
        ),
        _ => (
            app.ats.send(tenant, &d.body).await,
            Target::Ashby,
            "no Ashby API key is stored for this tenant",
        ),
    };
    app.metrics
        .latency_ms(target, started.elapsed().as_secs_f64() * 1e3);
    Ok(match result {
        Ok(()) => {
            app.store.delivery_succeeded(a.id, d.seq).await?;
            tracing::info!(
                seq = d.seq,
                kind = d.kind.as_str(),
                "update delivered to the ATS"
            );
            Attempt::Delivered
        }
        Err(e) => ats_failure(app, d, e, no_key),
    })
}

/// What the ATS's refusal of a delivery makes of it; `no_key` says which key is missing.
fn ats_failure(app: &App, d: &Delivery, e: AtsError, no_key: &str) -> Attempt {
    let now = app.clock.now();
    match e {
        AtsError::NoCredentials => Attempt::parked(no_key.into()),
        AtsError::Unauthorized(why) => Attempt::parked(why),
        // Throttling of the partner across customers: back off harder, and stop the run.
        AtsError::RateLimited {
            retry_after,
            partner_wide,
            detail,
        } => Attempt::Failed {
            retry: backoff_after(app, d, now, retry_after, partner_wide, &detail),
            error: detail,
            partner_throttled: partner_wide,
        },
        e @ (AtsError::Unavailable(_) | AtsError::Rejected(_)) => {
            let error = e.to_string();
            Attempt::failed(
                error.clone(),
                backoff_after(app, d, now, None, false, &error),
            )
        }
    }
}

/// A report file: downloaded from the vendor, then put on the candidate in the ATS. A file
/// refused for good (too large, not of its declared type, a URL the hub may not call) is dead at
/// once; the result it came with was delivered on its own lane.
async fn send_file(app: &App, a: &Assessment, d: &Delivery) -> StoreResult<Attempt> {
    let Ok(file) = serde_json::from_str::<FileDelivery>(&d.body) else {
        let why = "the file delivery is unreadable".to_owned();
        return Ok(Attempt::failed(why.clone(), Retry::Dead(why)));
    };
    let Some(tenant) = app.store.tenant(&a.tenant_id).await? else {
        return Ok(Attempt::parked(
            "the assessment's tenant no longer exists".into(),
        ));
    };
    let now = app.clock.now();
    let started = std::time::Instant::now();
    let bytes = app.vendors.fetch(&file.attachment).await;
    app.metrics
        .latency_ms(Target::Vendor, started.elapsed().as_secs_f64() * 1e3);
    let bytes = match bytes {
        Ok(b) => b,
        Err(e @ FetchError::Refused(_)) => {
            let why = e.to_string();
            return Ok(Attempt::failed(why.clone(), Retry::Dead(why)));
        }
        Err(e @ FetchError::Unavailable(_)) => {
            let error = e.to_string();
            let retry = backoff_after(app, d, now, None, false, &error);
            return Ok(Attempt::failed(error, retry));
        }
    };
    let started = std::time::Instant::now();
    let result = app.ats.attach(&tenant, &file, bytes).await;
    app.metrics
        .latency_ms(Target::Ashby, started.elapsed().as_secs_f64() * 1e3);
    Ok(match result {
        Ok(()) => {
            app.store.delivery_succeeded(a.id, d.seq).await?;
            tracing::info!(seq = d.seq, "report file put on the candidate in the ATS");
            Attempt::Delivered
        }
        Err(e) => ats_failure(app, d, e, "no Ashby API key is stored for this tenant"),
    })
}

async fn send_to_vendor(
    app: &App,
    a: &Assessment,
    d: &Delivery,
    known: Option<&Vendor>,
    announce: Announce,
) -> StoreResult<Attempt> {
    if d.kind == DeliveryKind::VendorOrder && a.status != Status::Ordering {
        // Cancelled (or otherwise settled) before the order ever went out: withdraw it.
        app.store.delivery_succeeded(a.id, d.seq).await?;
        tracing::info!(seq = d.seq, "order withdrawn before it was sent");
        return Ok(Attempt::Delivered);
    }
    let read;
    let vendor = match known.filter(|v| v.id == a.vendor_id) {
        Some(v) => v,
        None => {
            read = app.store.vendor(&a.vendor_id).await?;
            let Some(v) = &read else {
                return Ok(Attempt::parked(
                    "the assessment's vendor no longer exists".into(),
                ));
            };
            v
        }
    };
    let message = match d.kind {
        DeliveryKind::VendorOrder => Message::Order,
        _ => Message::Cancel,
    };
    let started = std::time::Instant::now();
    let reply = app
        .vendors
        .send(vendor, message, a.id, &d.body, vendor_tries(app, announce))
        .await;
    app.metrics
        .latency_ms(Target::Vendor, started.elapsed().as_secs_f64() * 1e3);
    if message == Message::Order {
        app.metrics.count(
            match &reply {
                Ok(VendorReply::Accepted { .. }) => names::VENDOR_ORDERS_ACCEPTED,
                Ok(VendorReply::Rejected { .. }) => names::VENDOR_ORDERS_REJECTED,
                Err(_) => names::VENDOR_ORDERS_FAILED,
            },
            1,
        );
    }
    match (message, reply) {
        (
            Message::Order,
            Ok(VendorReply::Accepted {
                vendor_reference, ..
            }),
        ) => {
            order::settle(
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
        (Message::Order, Ok(VendorReply::Rejected { message })) => {
            order::settle(
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
        (Message::Cancel, Ok(_)) | (Message::Cancel, Err(VendorError::Refused(404))) => {
            app.store.delivery_succeeded(a.id, d.seq).await?;
            Ok(Attempt::Delivered)
        }
        (_, Err(e @ VendorError::UrlNotAllowed(_))) => Ok(Attempt::failed(
            e.to_string(),
            Retry::Park(format!("{e}; fix the vendor's order_url, then redeliver")),
        )),
        (_, Err(e)) => {
            let error = e.to_string();
            let retry = backoff_after(app, d, app.clock.now(), None, false, &error);
            Ok(Attempt::failed(error, retry))
        }
    }
}

/// Sends this assessment's owed deliveries on the flush's lanes, in order per lane, stopping a
/// lane at its first failure, parked delivery or delivery not yet due (unless `Due::Now`). An
/// order settled with an announcement queues an ATS update: a second pass delivers it at once.
/// `known` is a snapshot of the assessment the caller already holds, if any: it saves a read
/// when only ATS updates or a vendor cancel are owed.
pub async fn flush(
    app: &App,
    id: AssessmentId,
    known: Option<&Assessment>,
    how: Flush,
) -> StoreResult<Report> {
    let mut report = Report::default();
    for _ in 0..2 {
        let (pass, followups) = flush_pass(app, id, known, how).await?;
        report.add(&pass);
        if !followups || pass.partner_throttled {
            break;
        }
    }
    Ok(report)
}

/// Lanes a pass stopped sending on.
#[derive(Default)]
struct Blocked {
    ats: bool,
    vendor: bool,
}

impl Blocked {
    fn has(&self, lane: Lane) -> bool {
        match lane {
            Lane::Ats => self.ats,
            Lane::Vendor => self.vendor,
            Lane::Files => false,
        }
    }
    /// Stops a lane for the rest of the pass. The files lane is not ordered (each file stands
    /// alone), so one file failing or waiting never holds back another.
    fn block(&mut self, lane: Lane) {
        match lane {
            Lane::Ats => self.ats = true,
            Lane::Vendor => self.vendor = true,
            Lane::Files => {}
        }
    }
}

async fn flush_pass(
    app: &App,
    id: AssessmentId,
    known: Option<&Assessment>,
    how: Flush,
) -> StoreResult<(Report, bool)> {
    let mut report = Report::default();
    let mut followups = false;
    let open = app.store.open_deliveries(id).await?;
    if open.is_empty() {
        return Ok((report, false));
    }
    // The assessment is read only when a delivery needs it. An ATS update or a vendor cancel
    // needs only ids that never change (tenant, vendor), so any snapshot does (the caller's
    // `known` one included); an order's effect depends on the latest status (it is withdrawn
    // once the assessment was cancelled), so it is read after the claim.
    let mut assessment: Option<Assessment> = known.cloned();
    let mut blocked = Blocked::default();
    for d in open {
        let lane = Lane::of(d.kind);
        if !how.lanes.cover(lane) || blocked.has(lane) {
            continue;
        }
        match d.state {
            DeliveryState::Dead(_) | DeliveryState::Delivered => continue,
            DeliveryState::Parked(_) => {
                blocked.block(lane);
                continue;
            }
            DeliveryState::Pending => {}
        }
        let now = app.clock.now();
        if how.due == Due::WhenDue && d.next_attempt_ms > now {
            blocked.block(lane);
            continue;
        }
        if lane != Lane::Vendor && assessment.is_none() {
            assessment = app.store.assessment(id).await?;
            if assessment.is_none() {
                break;
            }
        }
        if !app
            .store
            .claim_delivery(id, d.seq, now, now + lease(app))
            .await?
        {
            report.in_flight += 1;
            blocked.block(lane);
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
        let outcome = attempt(app, current, &d, None, how.announce).await?;
        report.count(&outcome);
        followups |= d.kind == DeliveryKind::VendorOrder
            && how.announce == Announce::Yes
            && matches!(outcome, Attempt::Delivered | Attempt::Rejected(_));
        if let Attempt::Failed {
            partner_throttled, ..
        } = outcome
        {
            report.partner_throttled |= partner_throttled;
            blocked.block(lane);
            if partner_throttled {
                break;
            }
        }
    }
    Ok((report, followups))
}

/// The scheduled run: every due delivery, oldest first, in order per assessment and lane, until
/// `budget` is spent (the rest waits for the next run). Stops early when the ATS throttles the
/// partner as a whole.
pub async fn run_due(app: &App, limit: usize, budget: Duration) -> StoreResult<Report> {
    let started = std::time::Instant::now();
    let now = app.clock.now();
    let due = app.store.due_deliveries(now, limit).await?;
    let mut report = Report::default();
    let mut seen = std::collections::HashSet::new();
    for d in &due {
        if !seen.insert(d.assessment_id) {
            continue;
        }
        if started.elapsed() >= budget {
            tracing::info!("run budget spent; the rest waits for the next run");
            break;
        }
        let how = Flush {
            lanes: Lanes::Both,
            announce: Announce::Yes,
            due: Due::WhenDue,
        };
        let r = flush(app, d.assessment_id, None, how).await?;
        report.add(&r);
        if r.partner_throttled {
            tracing::warn!("the ATS throttles the partner across customers; stopping this run");
            break;
        }
    }
    // Nothing was due at `now`, so nothing pending is older than that: the age is 0 without a
    // second read (the common case: this runs every minute).
    if !due.is_empty()
        && let Some(oldest) = app.store.due_deliveries(Timestamp::MAX, 1).await?.first()
    {
        report.oldest_pending_ms = now.since(oldest.next_attempt_ms).as_millis() as i64;
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

/// How many stuck deliveries (of every tenant, oldest first) a release looks through.
pub const RELEASE_SCAN_LIMIT: usize = 100;

/// Puts the tenant's parked ATS deliveries (updates and report files the ATS refused the key
/// for, or that waited for a key) back in the queue, due at `due`: called when the tenant's
/// customer has saved a working key, so that no result stays behind the old one. Dead
/// deliveries (given up after the maximum age) stay for an operator. Looks through the oldest
/// [`RELEASE_SCAN_LIMIT`] stuck deliveries only; any beyond are an operator's (the stuck-delivery
/// alarm has fired long before there are that many). Returns how many it released.
pub async fn release_parked_for_tenant(
    app: &App,
    tenant: &crate::domain::TenantId,
    due: Timestamp,
) -> StoreResult<u32> {
    let mut released = 0;
    let mut tenants: std::collections::HashMap<AssessmentId, bool> =
        std::collections::HashMap::new();
    for d in app.store.stuck_deliveries(RELEASE_SCAN_LIMIT).await? {
        if Lane::of(d.kind) == Lane::Vendor || !matches!(d.state, DeliveryState::Parked(_)) {
            continue;
        }
        let ours = match tenants.get(&d.assessment_id) {
            Some(&ours) => ours,
            None => {
                let ours = app
                    .store
                    .assessment(d.assessment_id)
                    .await?
                    .is_some_and(|a| &a.tenant_id == tenant);
                tenants.insert(d.assessment_id, ours);
                ours
            }
        };
        if ours && app.store.redeliver(d.assessment_id, d.seq, due).await? {
            tracing::info!(
                assessment = %d.assessment_id,
                seq = d.seq,
                kind = d.kind.as_str(),
                "released a parked delivery after a new key was saved"
            );
            released += 1;
        }
    }
    Ok(released)
}
