//! The store port: everything the hub persists, behind one narrow trait. `MemoryStore` and
//! `DynamoDbStore` implement it with the same semantics; `tests/` runs one conformance suite
//! against both. Every state change is a conditional write: two concurrent requests can never both
//! succeed at the same change, so a read-then-write race cannot order a check twice.

pub mod dynamodb;
pub mod memory;

use async_trait::async_trait;

use crate::domain::{
    Assessment, AssessmentId, AssessmentTypeId, OutboxUpdate, Status, Tenant, TenantId, TokenHash,
    Vendor, VendorId,
};

pub use dynamodb::DynamoDbStore;
pub use memory::MemoryStore;

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum StoreError {
    /// The backend failed or throttled; nothing was written (writes are atomic). Retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A record could not be decoded: a bug or manual tampering, not a caller's fault.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The start-idempotency key: one live assessment per tenant, application and assessment type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StartKey {
    pub tenant_id: TenantId,
    pub application_id: String,
    pub assessment_type_id: AssessmentTypeId,
}

/// A new assessment with what is needed to (re)send its order.
#[derive(Debug, Clone)]
pub struct NewAssessment {
    /// Status `Ordering`, `order_lease_until_ms` set: the creator holds the order lease.
    pub assessment: Assessment,
    pub start_key: StartKey,
    /// The vendor order body (carries candidate PII), kept until `pii_expires_at_s`.
    pub order_body: String,
    /// Unix seconds after which the store may delete the order body (DynamoDB TTL).
    pub pii_expires_at_s: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    /// The assessment was written, with its start key and order body, in one atomic write.
    Created,
    /// A live (non-terminal) assessment already holds the start key; nothing was written.
    Existing(Box<Assessment>),
}

/// A callback's effect, applied atomically with its `webhook-id` marker.
#[derive(Debug, Clone)]
pub struct CallbackWrite {
    pub vendor_id: VendorId,
    pub webhook_id: String,
    /// Unix seconds after which the processed-webhook marker may be forgotten.
    pub marker_expires_at_s: i64,
    pub assessment_id: AssessmentId,
    /// `Some` when the callback changes the assessment; `None` records only the marker.
    pub change: Option<CallbackChange>,
}

#[derive(Debug, Clone)]
pub struct CallbackChange {
    /// Applied only if the stored version still equals this.
    pub expected_version: u64,
    pub status: Status,
    pub status_label: Option<String>,
    pub now_ms: i64,
    /// The `assessment.update` owed to Ashby; its `timestamp` is `update_ms`.
    pub update_body: String,
    pub update_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackOutcome {
    Applied,
    /// This vendor already delivered this `webhook-id`; nothing was written.
    Duplicate,
    /// The assessment changed since it was read; nothing was written. Re-read and decide again.
    Conflict,
}

/// Persistence for the hub. Implementations must be safe for concurrent use from many requests
/// and many processes; the conditions stated on each method are enforced by the backend.
#[async_trait]
pub trait Store: Send + Sync {
    // --- registry (written by operators, read on every request) ---

    /// Creates or replaces a tenant, making `token` its (only) trigger token.
    async fn put_tenant(&self, tenant: &Tenant, token: &TokenHash) -> StoreResult<()>;
    /// The enabled tenant whose trigger token hashes to `token`, if any.
    async fn tenant_by_token(&self, token: &TokenHash) -> StoreResult<Option<Tenant>>;
    async fn tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>>;
    /// Creates or replaces a vendor.
    async fn put_vendor(&self, vendor: &Vendor) -> StoreResult<()>;
    async fn vendor(&self, id: &VendorId) -> StoreResult<Option<Vendor>>;

    // --- assessments ---

    /// Writes the assessment, its start key and its order body atomically, unless the start key
    /// already points at a live assessment (→ `Existing`). A start key that points at a finished
    /// assessment is taken over, conditionally on still pointing there.
    async fn create_assessment(&self, new: &NewAssessment) -> StoreResult<CreateOutcome>;
    async fn assessment(&self, id: AssessmentId) -> StoreResult<Option<Assessment>>;
    /// The order body, unless its PII has expired.
    async fn order_body(&self, id: AssessmentId) -> StoreResult<Option<String>>;
    /// Takes the order lease: succeeds only if the assessment is `Ordering` and no unexpired lease
    /// is held (`order_lease_until_ms <= now_ms`). Whoever holds it may send the vendor order.
    async fn claim_order(&self, id: AssessmentId, now_ms: i64, until_ms: i64) -> StoreResult<bool>;
    /// The vendor accepted: `Ordering` → `Ordered` (a later status that a fast callback already
    /// recorded is kept), stores the vendor reference, releases the lease.
    async fn record_order_accepted(
        &self,
        id: AssessmentId,
        vendor_reference: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<()>;
    /// The vendor refused (422): `Ordering` → `Rejected` with its message. False if no longer
    /// `Ordering`.
    async fn record_order_rejected(
        &self,
        id: AssessmentId,
        message: &str,
        now_ms: i64,
    ) -> StoreResult<bool>;
    /// The vendor could not be reached: releases the lease so that a retried start may re-order.
    async fn release_order(&self, id: AssessmentId) -> StoreResult<()>;
    /// Ashby cancelled: any non-terminal status → `Cancelled`. False if already terminal.
    async fn record_cancelled(&self, id: AssessmentId, now_ms: i64) -> StoreResult<bool>;

    // --- callbacks and the updates owed to Ashby ---

    /// Writes the `webhook-id` marker (unless present → `Duplicate`) and, with `change`, the new
    /// status plus the next outbox update (`update_seq + 1`) in the same atomic write, conditional
    /// on `expected_version` (→ `Conflict`).
    async fn apply_callback(&self, write: &CallbackWrite) -> StoreResult<CallbackOutcome>;
    /// Undelivered updates of one assessment, oldest first.
    async fn pending_updates(&self, id: AssessmentId) -> StoreResult<Vec<OutboxUpdate>>;
    /// Takes the delivery lease of one update: succeeds only if it is undelivered and no unexpired
    /// lease is held. Counts an attempt.
    async fn claim_update(
        &self,
        id: AssessmentId,
        seq: u64,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<bool>;
    /// Ashby accepted the update: it is never sent again.
    async fn mark_update_delivered(
        &self,
        id: AssessmentId,
        seq: u64,
        now_ms: i64,
    ) -> StoreResult<()>;
    /// Delivery failed: releases the lease and records why (no PII, no key).
    async fn release_update(&self, id: AssessmentId, seq: u64, error: &str) -> StoreResult<()>;
}
