//! A recruiter starts an assessment: record it with its vendor order, try the order at once, and
//! say where it stands.
//!
//! Idempotency: the start key (tenant, application, assessment type) is taken with a conditional
//! write together with the assessment record and its order delivery, so of two identical starts
//! only one creates an assessment; the other finds it. The order is a durable delivery: only the
//! holder of its lease sends it, so concurrent or retried starts place one order, and a vendor
//! that is down gets the order later from the delivery queue (the ATS is told it is queued, then
//! "Started" or why not).

use std::time::Duration;

use super::deliver::{Attempt, attempt, lease};
use super::order::Announce;
use crate::app::App;
use crate::clock::Timestamp;
use crate::domain::{
    Assessment, AssessmentId, Ats, Delivery, DeliveryKind, DeliveryState, NewDelivery, Order,
    PackageRef, Status, Tenant, Vendor, current_label, labels, options,
};
use crate::metrics::names;
use crate::ports::{CreateOutcome, NewAssessment, Retry, StartKey, StoreError, StoreResult};

/// How long a repeated start waits for a concurrent one to finish ordering. Bounded so that
/// waiting plus ordering stays well inside API Gateway's 30 s limit.
const MAX_RESUME_WAIT: Duration = Duration::from_secs(8);

/// How often a repeated start looks again while it waits.
const RESUME_POLL: Duration = Duration::from_millis(200);

/// What a start came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Started {
    /// The assessment exists and is ordered (or queued): its id, and the status wording and
    /// time the ATS is shown.
    Live {
        id: AssessmentId,
        label: String,
        at: Timestamp,
    },
    /// The vendor refused the order; its words, for the recruiter, and the assessment's id (an
    /// ATS that cannot show the words at once reads them later by id).
    Refused { id: AssessmentId, message: String },
    /// The package options the recruiter gave do not fit the package: what to fix, in words.
    InvalidOptions(String),
    /// The assessment type is not enabled for this tenant, or its vendor no longer offers it.
    NotEnabled,
    /// The vendor cannot be called because of a configuration problem an operator must fix.
    Misconfigured { vendor_name: String, detail: String },
}

/// Starts `order` for `tenant`; the vendor calls back under `callback_base`.
pub async fn start(
    app: &App,
    tenant: &Tenant,
    order: &Order,
    callback_base: &str,
) -> StoreResult<Started> {
    let Some((package, vendor)) = resolve(app, tenant, order).await? else {
        return Ok(Started::NotEnabled);
    };
    let declared = vendor
        .package(&package.package)
        .map(|p| p.options.as_slice())
        .unwrap_or_default();
    let options = match options::check_values(&package, declared, &order.additional_fields) {
        Ok(values) => values,
        Err(problem) => return Ok(Started::InvalidOptions(problem.0)),
    };
    let callback_url = format!(
        "{}/callbacks/{}",
        callback_base.trim_end_matches('/'),
        vendor.id
    );
    let now = app.clock.now();
    let id = AssessmentId::new();
    let body = app
        .vendors
        .order_body(id, &package.package, order, &options, &callback_url)
        .map_err(|e| StoreError::Corrupt(format!("serialising an order: {e}")))?;
    let leased_until = now + lease(app);
    let new = NewAssessment {
        assessment: Assessment {
            id,
            tenant_id: tenant.id.clone(),
            vendor_id: vendor.id.clone(),
            package_id: package.package.clone(),
            assessment_type_id: order.assessment_type_id,
            application_id: order.start_key.clone(),
            candidate_id: order.candidate_id.clone(),
            status: Status::Ordering,
            status_label: None,
            vendor_reference: None,
            rejection_message: None,
            created_at_ms: now,
            updated_at_ms: now,
            last_update_ms: now,
            update_seq: 0,
            version: 1,
            ats: order.ats,
            ats_url: order.ats_url.clone(),
            summary: None,
            ats_errors: 0,
            last_ats_error: None,
        },
        start_key: StartKey {
            tenant_id: tenant.id.clone(),
            application_id: order.start_key.clone(),
            assessment_type_id: order.assessment_type_id,
        },
        // Greenhouse's `url` names one test instance forever: a repeat of it, even after the
        // assessment ended, is the same assessment.
        keep_finished: order.ats == Ats::Greenhouse,
        order: NewDelivery {
            kind: DeliveryKind::VendorOrder,
            body: body.clone(),
            next_attempt_ms: now,
            leased_until_ms: leased_until,
            expires_at_s: Some((now + app.config.pii_retention).as_secs()),
        },
    };
    match app.store.create_assessment(&new).await? {
        CreateOutcome::Created => {
            tracing::Span::current().record("assessment_id", id.to_string());
            tracing::info!(vendor = %vendor.id, "assessment created");
            app.metrics.count(names::ASSESSMENTS_STARTED, 1);
            let delivery = Delivery {
                assessment_id: id,
                seq: 1,
                kind: DeliveryKind::VendorOrder,
                body,
                state: DeliveryState::Pending,
                attempts: 0,
                created_ms: now,
                next_attempt_ms: now,
                lease_until_ms: leased_until,
                last_error: None,
            };
            let mut assessment = new.assessment;
            assessment.update_seq = 1;
            order_now(app, &vendor, &assessment, &delivery).await
        }
        CreateOutcome::Existing(existing) => {
            tracing::Span::current().record("assessment_id", existing.id.to_string());
            tracing::info!("start repeated; resuming the live assessment");
            resume(app, &vendor, *existing).await
        }
    }
}

/// The tenant's enabled package for the order's type, and its vendor if it still offers it.
async fn resolve(
    app: &App,
    tenant: &Tenant,
    order: &Order,
) -> StoreResult<Option<(PackageRef, Vendor)>> {
    let Some(package) = tenant
        .packages
        .iter()
        .find(|p| p.type_id() == order.assessment_type_id)
    else {
        return Ok(None);
    };
    let vendor = app
        .store
        .vendor(&package.vendor)
        .await?
        .filter(|v| v.package(&package.package).is_some());
    if let Some(v) = &vendor {
        tracing::Span::current().record("vendor", v.id.as_str());
    }
    Ok(vendor.map(|v| (package.clone(), v)))
}

/// A start for an assessment that already exists: answer as the first start did. If its order is
/// being sent by a concurrent start, wait (bounded) for the vendor's answer; if it is queued and
/// nobody holds it, try it once more now.
async fn resume(app: &App, vendor: &Vendor, mut existing: Assessment) -> StoreResult<Started> {
    let deadline = app.clock.now() + MAX_RESUME_WAIT;
    loop {
        if existing.status != Status::Ordering {
            return Ok(standing(&existing));
        }
        let order = app
            .store
            .open_deliveries(existing.id)
            .await?
            .into_iter()
            .find(|d| d.kind == DeliveryKind::VendorOrder && d.state == DeliveryState::Pending);
        let Some(order) = order else {
            return Ok(standing(&existing));
        };
        let now = app.clock.now();
        if order.lease_until_ms <= now
            && app
                .store
                .claim_delivery(existing.id, order.seq, now, now + lease(app))
                .await?
        {
            return order_now(app, vendor, &existing, &order).await;
        }
        if now > deadline {
            return Ok(standing(&existing));
        }
        tokio::time::sleep(RESUME_POLL).await;
        existing = app.store.assessment(existing.id).await?.ok_or_else(|| {
            StoreError::Corrupt("assessment vanished while its start was resumed".into())
        })?;
    }
}

/// Tries the order (the caller holds its lease): started, refused by the vendor, or queued for
/// the delivery queue to retry.
async fn order_now(
    app: &App,
    vendor: &Vendor,
    assessment: &Assessment,
    order: &Delivery,
) -> StoreResult<Started> {
    Ok(
        match attempt(app, assessment, order, Some(vendor), Announce::No).await? {
            Attempt::Delivered => {
                let mut a = assessment.clone();
                a.status = Status::Ordered;
                standing(&a)
            }
            Attempt::Rejected(message) => Started::Refused {
                id: assessment.id,
                message,
            },
            Attempt::Failed {
                retry: Retry::At(_),
                ..
            } => {
                tracing::info!("vendor unavailable; the order is queued");
                standing(assessment)
            }
            Attempt::Failed { error, .. } => Started::Misconfigured {
                vendor_name: vendor.name.clone(),
                detail: error,
            },
        },
    )
}

/// Where an assessment stands, as a start answers it.
fn standing(a: &Assessment) -> Started {
    match a.status {
        Status::Rejected => Started::Refused {
            id: a.id,
            message: a
                .rejection_message
                .clone()
                .unwrap_or_else(|| labels::NOT_ACCEPTED_REASON.into()),
        },
        status => Started::Live {
            id: a.id,
            label: current_label(status, a.status_label.as_deref()).to_owned(),
            at: a.last_update_ms,
        },
    }
}
