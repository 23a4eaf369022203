//! What an ATS that pulls results (Greenhouse) reads and reports back: one assessment of the
//! calling tenant as it stands, and the ATS's report that a reply of ours was unusable, recorded
//! against the assessment it names (counted, the last report kept) without changing its state.

use crate::app::App;
use crate::domain::{Assessment, AssessmentId, Tenant};
use crate::ports::{Change, ChangeOutcome, ChangeWrite, StoreError, StoreResult};
use crate::retry::CONFLICT;

/// Longest ATS error report kept on an assessment.
const MAX_KEPT_ERROR: usize = 1024;

/// The tenant's assessment `id`; another tenant's is answered exactly like one that does not
/// exist.
pub async fn assessment_of(
    app: &App,
    tenant: &Tenant,
    id: AssessmentId,
) -> StoreResult<Option<Assessment>> {
    let found = app
        .store
        .assessment(id)
        .await?
        .filter(|a| a.tenant_id == tenant.id);
    if found.is_some() {
        tracing::Span::current().record("assessment_id", id.to_string());
    }
    Ok(found)
}

/// Records on the tenant the ATS's report of an unusable reply that names none of its
/// assessments: counted, and the last report (bounded) kept, for the operator.
pub async fn record_tenant_ats_error(app: &App, tenant: &Tenant, errors: &str) -> StoreResult<()> {
    let kept: String = errors.chars().take(MAX_KEPT_ERROR).collect();
    app.store.record_tenant_ats_error(&tenant.id, &kept).await?;
    Ok(())
}

/// Records the ATS's report that a reply about assessment `id` was unusable: the count and the
/// last report (`errors`, joined and bounded) go on the assessment, its status untouched. False
/// if the tenant has no such assessment.
pub async fn record_ats_error(
    app: &App,
    tenant: &Tenant,
    id: AssessmentId,
    errors: &str,
) -> StoreResult<bool> {
    let kept: String = errors.chars().take(MAX_KEPT_ERROR).collect();
    for try_no in 0..CONFLICT.tries {
        if try_no > 0 {
            CONFLICT.wait(try_no).await;
        }
        let Some(a) = assessment_of(app, tenant, id).await? else {
            return Ok(false);
        };
        let write = ChangeWrite {
            assessment_id: id,
            marker: None,
            change: Some(Change {
                expected_version: a.version,
                expected_update_seq: a.update_seq,
                status: a.status,
                status_label: a.status_label.clone(),
                rejection_message: None,
                vendor_reference: None,
                now_ms: app.clock.now(),
                deliveries: vec![],
                update_ms: None,
                summary: None,
                ats_error: Some(kept.clone()),
            }),
            settle: None,
        };
        match app.store.apply(&write).await? {
            ChangeOutcome::Conflict => continue,
            _ => return Ok(true),
        }
    }
    Err(StoreError::Unavailable(format!(
        "assessment still contended after {} tries",
        CONFLICT.tries
    )))
}
