//! The ports: the traits the use cases need, split by caller, with the types that cross them.
//! The functions use [`Registry`] (reads of tenants and vendors), [`Assessments`] and
//! [`DeliveryQueue`], together [`Store`]; only operators (`hubctl`, the local hub, tests) use
//! [`RegistryAdmin`] and [`QueueAdmin`], together with `Store` [`AdminStore`]. `MemoryStore` and
//! `DynamoDbStore` implement all of them with the same semantics; `tests/` runs one conformance
//! suite against both.
//!
//! Every state change is a conditional write: two concurrent requests can never both succeed at
//! the same change, so a read-then-write race cannot order a check twice. A failed condition is
//! an answer (`false`, `Existing`, `Duplicate`, `Conflict`), never an error. Implementations are
//! safe for concurrent use from many requests and many processes; they do not retry
//! `Unavailable` beyond the AWS SDK's own attempts (see `crate::retry`). A call whose write loses
//! a race with another write (a claim or a settlement caught in a transaction, a start key taken
//! over, a registry read-modify-write) tries again inside the call (`crate::retry::CONTENTION`)
//! and is `Unavailable` once those tries are used up; `Assessments::apply` instead answers
//! `Conflict` and leaves the retry to its caller.

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::domain::{
    Assessment, AssessmentId, AssessmentTypeId, AtsCall, Delivery, DeliveryReport, Invite,
    KeyCheck, NewDelivery, Status, Summary, Tenant, TenantHealth, TenantId, TokenHash, Vendor,
    VendorId,
};

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

/// How many trigger tokens a tenant may hold at once: enough to rotate, few enough that old ones
/// do not pile up unnoticed.
pub const MAX_TENANT_TOKENS: usize = 5;

/// One of a tenant's trigger tokens, as operators see it: its hash, never the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantToken {
    pub hash: TokenHash,
    /// When the token was added (by the store's clock).
    pub added_at_ms: Timestamp,
}

/// A tenant with its trigger tokens, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantEntry {
    pub tenant: Tenant,
    pub tokens: Vec<TenantToken>,
    /// Reports of unusable replies the tenant's ATS made without naming one of its assessments
    /// ([`Registry::record_tenant_ats_error`]), and the last one.
    pub ats_errors: u32,
    pub last_ats_error: Option<String>,
    pub health: TenantHealth,
}

/// A tenant with what the hub knows of its connection: what an authentication reads, in the same
/// read as the tenant, so that deciding whether to record the call costs nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub tenant: Tenant,
    pub health: TenantHealth,
}

/// What issuing a trigger token from a connect page did. Anything but `Issued` wrote nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueOutcome {
    Issued,
    /// "Show token" was already used on this link.
    AlreadyShown,
    /// No such link, or it was revoked or has expired, or its tenant is gone.
    NoInvite,
    /// The tenant holds `MAX_TENANT_TOKENS` tokens already.
    TooManyTokens,
}

/// What a conditional registry write did. Anything but `Done` wrote nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryOutcome {
    Done,
    /// A tenant or vendor with this id already exists.
    AlreadyExists,
    /// No tenant or vendor with this id.
    NotFound,
    /// Another tenant holds this token hash.
    TokenInUse,
    /// The tenant holds no token with this hash.
    UnknownToken,
    /// The tenant already holds `MAX_TENANT_TOKENS` tokens.
    TooManyTokens,
    /// The tenant has no connect link with this id.
    UnknownInvite,
}

/// The start-idempotency key: one live assessment per tenant, application and assessment type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StartKey {
    pub tenant_id: TenantId,
    pub application_id: String,
    pub assessment_type_id: AssessmentTypeId,
}

/// A new assessment, written with its start key and its vendor order (the first delivery).
#[derive(Debug, Clone)]
pub struct NewAssessment {
    /// Status `Ordering`, `update_seq` 0 (the order becomes delivery 1).
    pub assessment: Assessment,
    pub start_key: StartKey,
    /// The vendor order; the writer normally holds its lease and tries it at once.
    pub order: NewDelivery,
    /// The start key names one order forever (Greenhouse's `url`): a finished assessment holding
    /// it is answered `Existing` rather than taken over.
    pub keep_finished: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    /// The assessment, its start key and its order delivery were written in one atomic write.
    Created,
    /// A live (non-terminal) assessment already holds the start key, or with `keep_finished`
    /// any assessment does; nothing was written.
    Existing(Box<Assessment>),
}

/// Marks a vendor's `webhook-id` as processed, in the same write as the change it caused.
#[derive(Debug, Clone)]
pub struct WebhookMarker {
    pub vendor_id: VendorId,
    pub webhook_id: String,
    /// Unix seconds after which the marker may be forgotten.
    pub expires_at_s: i64,
}

/// A change to an assessment, applied atomically with everything it implies.
#[derive(Debug, Clone)]
pub struct Change {
    /// Applied only if the stored version still equals this.
    pub expected_version: u64,
    /// The `update_seq` read with `expected_version`: the new deliveries take the numbers after
    /// it. The store checks it with the version, so that a change needs no read of its own.
    pub expected_update_seq: u64,
    pub status: Status,
    pub status_label: Option<String>,
    /// Set when the vendor refused the order.
    pub rejection_message: Option<String>,
    /// Set when the vendor's acceptance named its reference.
    pub vendor_reference: Option<String>,
    pub now_ms: Timestamp,
    /// Deliveries this change owes, in order; each gets the next sequence number.
    pub deliveries: Vec<NewDelivery>,
    /// `timestamp` of the Ashby update among `deliveries`, if any (kept as `last_update_ms`).
    pub update_ms: Option<Timestamp>,
    /// Set by the move to a final state: what an ATS that pulls results is answered.
    pub summary: Option<Summary>,
    /// The ATS reported a reply as unusable: counted, and kept as the last such report.
    pub ats_error: Option<String>,
}

/// One atomic write: optionally a webhook marker, a change, and the settling of the delivery
/// whose outcome caused it (a vendor's answer to an order).
#[derive(Debug, Clone)]
pub struct ChangeWrite {
    pub assessment_id: AssessmentId,
    pub marker: Option<WebhookMarker>,
    pub change: Option<Change>,
    /// Settle this delivery (by seq) as delivered in the same write.
    pub settle: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOutcome {
    Applied,
    /// The marker's `webhook-id` was already processed; nothing was written.
    Duplicate,
    /// The assessment changed since it was read (or does not exist), or the write was caught in
    /// another write in flight; nothing was written. Re-read and decide again.
    Conflict,
}

/// A delivery found due by the scheduler (read from an index that may lag slightly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueRef {
    pub assessment_id: AssessmentId,
    pub seq: u64,
    pub next_attempt_ms: Timestamp,
}

/// The outcome of a failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Retry {
    /// Try again at this time.
    At(Timestamp),
    Park(String),
    Dead(String),
}

/// Registry reads: every request authenticates and resolves its vendor through these. Besides
/// `record_tenant_ats_error`, the functions' writes to a tenant are its health (`record_*`) and
/// the end of a rotation: each one conditional update of attributes no operator writes.
#[async_trait]
pub trait Registry: Send + Sync {
    /// The enabled tenant whose trigger token hashes to `token`, if any, with its health. A
    /// token is valid while its token record points at the tenant and the tenant lists it.
    /// Hashes are compared in constant time.
    async fn account_by_token(&self, token: &TokenHash) -> StoreResult<Option<Account>>;
    /// The tenant with this id, enabled or not, with its health.
    async fn account(&self, id: &TenantId) -> StoreResult<Option<Account>>;
    /// [`Registry::account_by_token`] without the health.
    async fn tenant_by_token(&self, token: &TokenHash) -> StoreResult<Option<Tenant>> {
        Ok(self.account_by_token(token).await?.map(|a| a.tenant))
    }
    /// The tenant with this id, enabled or not.
    async fn tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        Ok(self.account(id).await?.map(|a| a.tenant))
    }
    async fn vendor(&self, id: &VendorId) -> StoreResult<Option<Vendor>>;
    /// Records on the tenant a report its ATS made of an unusable reply that names none of the
    /// tenant's assessments (Greenhouse's `response_error`): one more counted, and `text` kept as
    /// the last. It touches nothing an operator writes. `false` if there is no such tenant.
    async fn record_tenant_ats_error(&self, id: &TenantId, text: &str) -> StoreResult<bool>;
    /// Records the tenant's last authenticated ATS call, unless one was recorded at or after
    /// `stale_before` (a conditional update: of many concurrent calls, at most one writes).
    /// `false` if nothing was written.
    async fn record_ats_call(
        &self,
        id: &TenantId,
        call: &AtsCall,
        stale_before: Timestamp,
    ) -> StoreResult<bool>;
    /// Records the outcome of the tenant's last update to its ATS, unless the same outcome was
    /// recorded at or after `stale_before`. `false` if nothing was written.
    async fn record_delivery(
        &self,
        id: &TenantId,
        report: &DeliveryReport,
        stale_before: Timestamp,
    ) -> StoreResult<bool>;
    /// The ATS called with `token`, the tenant's pending token (`TenantHealth::pending_token`):
    /// its other tokens stop working and the rotation is over, atomically. `false` (nothing
    /// written) if `token` is not the tenant's pending token.
    async fn complete_rotation(&self, id: &TenantId, token: &TokenHash) -> StoreResult<bool>;
}

/// What the connect page needs beyond the registry: its links, the token it issues, the key
/// check it records, and the count of failed attempts it limits.
#[async_trait]
pub trait Connections: Send + Sync {
    /// The link whose code hashes to `hash`, whatever its state.
    async fn invite(&self, hash: &TokenHash) -> StoreResult<Option<Invite>>;
    /// Issues `token` to the tenant of the link `invite`, atomically: the token is added; if the
    /// tenant holds other tokens it becomes the pending token (they stay valid until the ATS
    /// calls with it), and a pending token the ATS never called with is revoked in its favour;
    /// with `reveal` the link's one "Show token" is used up (`AlreadyShown` if it was). The link
    /// must be unrevoked and unexpired at `now`.
    async fn issue_connect_token(
        &self,
        invite: &TokenHash,
        token: &TokenHash,
        reveal: bool,
        now: Timestamp,
    ) -> StoreResult<IssueOutcome>;
    /// Records the check of a key that was stored. `false` if there is no such tenant.
    async fn record_key_check(&self, id: &TenantId, check: &KeyCheck) -> StoreResult<bool>;
    /// The failures counted under `key` (one window of one scope: the caller names both).
    async fn failures(&self, key: &str) -> StoreResult<u32>;
    /// Counts one more failure under `key`, forgotten after `expires_at_s`; the new count.
    async fn add_failure(&self, key: &str, expires_at_s: i64) -> StoreResult<u32>;
}

/// The assessments and the changes made to them.
#[async_trait]
pub trait Assessments: Send + Sync {
    /// Writes the assessment, its start key and its order delivery atomically, unless the start
    /// key already points at a live assessment (→ `Existing`). A start key that points at a
    /// finished assessment is taken over, conditionally on still pointing there.
    async fn create_assessment(&self, new: &NewAssessment) -> StoreResult<CreateOutcome>;
    async fn assessment(&self, id: AssessmentId) -> StoreResult<Option<Assessment>>;
    /// Applies `write` atomically: the marker (unless present → `Duplicate`), the change
    /// (conditional on `expected_version` and `expected_update_seq` → `Conflict`; bumps
    /// `version`, appends its deliveries with the next sequence numbers) and the settling of one
    /// delivery as delivered. A write caught in another write in flight is `Conflict` as well,
    /// with nothing written: `apply` never retries, the caller re-reads and decides again
    /// (`crate::retry::CONFLICT`).
    async fn apply(&self, write: &ChangeWrite) -> StoreResult<ChangeOutcome>;
}

/// The delivery queue as the functions use it: read what one assessment owes, lease, settle, and
/// find what is due.
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Deliveries of one assessment that are not yet delivered (pending, parked or dead), in
    /// sequence order.
    async fn open_deliveries(&self, id: AssessmentId) -> StoreResult<Vec<Delivery>>;
    /// Takes the lease of one delivery: succeeds only if it is pending and no unexpired lease is
    /// held (`lease_until_ms <= now`). Counts an attempt. The holder may send it.
    async fn claim_delivery(
        &self,
        id: AssessmentId,
        seq: u64,
        now: Timestamp,
        until: Timestamp,
    ) -> StoreResult<bool>;
    /// The receiver accepted it: never sent again.
    async fn delivery_succeeded(&self, id: AssessmentId, seq: u64) -> StoreResult<()>;
    /// An attempt failed: releases the lease, records `error` (no PII, no key) and when to retry,
    /// or parks it, or declares it dead.
    async fn delivery_failed(
        &self,
        id: AssessmentId,
        seq: u64,
        error: &str,
        retry: &Retry,
    ) -> StoreResult<()>;
    /// Pending deliveries whose `next_attempt_ms <= now`, oldest first, at most `limit`. Read
    /// from an index that may lag slightly: every claim it leads to is conditional.
    async fn due_deliveries(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<DueRef>>;
    /// Parked or dead deliveries, oldest first, at most `limit` (operators list them; the
    /// connect page releases its tenant's parked ATS deliveries once a new key is saved). Read
    /// from an index that may lag slightly.
    async fn stuck_deliveries(&self, limit: usize) -> StoreResult<Vec<Delivery>>;
    /// Puts a parked or dead delivery back to pending, due at `due`, as if new: its age
    /// (`created_ms`) and attempts start again, so the maximum age counts from the redelivery.
    /// False if it was neither parked nor dead.
    async fn redeliver(&self, id: AssessmentId, seq: u64, due: Timestamp) -> StoreResult<bool>;
}

/// Everything the functions persist: what `App` holds.
pub trait Store: Registry + Assessments + DeliveryQueue + Connections {}
impl<T: Registry + Assessments + DeliveryQueue + Connections + ?Sized> Store for T {}

/// Registry writes and listings, for operators only (`hubctl`, the local hub's seeding).
///
/// A tenant may hold several trigger tokens (at most `MAX_TENANT_TOKENS`), so that a token can be
/// rotated without downtime: add the new one, let the customer switch, revoke the old one. Every
/// method below changes a tenant and its token records in one atomic write.
#[async_trait]
pub trait RegistryAdmin: Send + Sync {
    /// Creates or replaces a tenant, making `token` its only trigger token: the tenant's other
    /// tokens stop working. A token another tenant held moves to this one.
    async fn put_tenant(&self, tenant: &Tenant, token: &TokenHash) -> StoreResult<()>;
    /// Creates a tenant with `token` as its only trigger token. `AlreadyExists` if the id is
    /// taken, `TokenInUse` if another tenant holds `token`; nothing is written then.
    async fn create_tenant(
        &self,
        tenant: &Tenant,
        token: &TokenHash,
    ) -> StoreResult<RegistryOutcome>;
    /// Applies `change` to the stored tenant (name, Ashby base URL, packages, disabled) and stores
    /// the result, atomically: if another write lands between the read and the write, the tenant
    /// is read again and `change` applied again, so no concurrent change is lost. The id, the ATS
    /// (an account's ATS never changes: its assessments and tokens are that ATS's) and the
    /// tokens are kept. `None` if there is no such tenant.
    async fn update_tenant(
        &self,
        id: &TenantId,
        change: &(dyn for<'t> Fn(&'t mut Tenant) + Send + Sync),
    ) -> StoreResult<Option<Tenant>>;
    /// Adds a trigger token; the tenant's other tokens keep working. Adding a token the tenant
    /// already holds changes nothing (`Done`). `NotFound`, `TokenInUse` (another tenant holds
    /// it) or `TooManyTokens` write nothing.
    async fn add_tenant_token(
        &self,
        tenant: &TenantId,
        token: &TokenHash,
    ) -> StoreResult<RegistryOutcome>;
    /// Revokes one trigger token; it stops working at once, the others keep working (a revoked
    /// pending token ends the rotation: the others simply stay). `NotFound`
    /// or `UnknownToken` (not one of this tenant's tokens) write nothing. Revoking the last token
    /// is allowed: the tenant then has none until `add_tenant_token`.
    async fn revoke_tenant_token(
        &self,
        tenant: &TenantId,
        token: &TokenHash,
    ) -> StoreResult<RegistryOutcome>;
    /// Creates a tenant without a trigger token: it awaits its customer, who gets one from a
    /// connect link. `AlreadyExists` if the id is taken (nothing written).
    async fn create_tenant_awaiting(&self, tenant: &Tenant) -> StoreResult<RegistryOutcome>;
    /// Stores a new connect link. `NotFound` if its tenant does not exist (nothing written).
    async fn create_invite(&self, invite: &Invite) -> StoreResult<RegistryOutcome>;
    /// The tenant's connect links, newest first, revoked and expired ones included (until the
    /// store forgets them, 30 days after they expire). On DynamoDB this scans the table.
    async fn invites(&self, tenant: &TenantId) -> StoreResult<Vec<Invite>>;
    /// Ends the tenant's link with this id (`Invite::id`) at `now`. `UnknownInvite` if the tenant
    /// has none with that id; revoking a revoked link changes nothing (`Done`).
    async fn revoke_invite(
        &self,
        tenant: &TenantId,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<RegistryOutcome>;
    /// The tenant's trigger tokens (hashes only), oldest first; empty for an unknown tenant.
    async fn tenant_tokens(&self, tenant: &TenantId) -> StoreResult<Vec<TenantToken>>;
    /// Every tenant with its tokens, by id. On DynamoDB this scans the table.
    async fn list_tenants(&self) -> StoreResult<Vec<TenantEntry>>;
    /// Creates or replaces a vendor.
    async fn put_vendor(&self, vendor: &Vendor) -> StoreResult<()>;
    /// Creates a vendor unless one with its id exists (`AlreadyExists`, nothing written).
    async fn create_vendor(&self, vendor: &Vendor) -> StoreResult<RegistryOutcome>;
    /// Applies `change` to the stored vendor (name, order URL, packages) like `update_tenant`:
    /// atomically, re-applied if another write lands in between; the id is kept. `None` if there
    /// is no such vendor.
    async fn update_vendor(
        &self,
        id: &VendorId,
        change: &(dyn for<'v> Fn(&'v mut Vendor) + Send + Sync),
    ) -> StoreResult<Option<Vendor>>;
    /// Every vendor, by id. On DynamoDB this scans the table.
    async fn list_vendors(&self) -> StoreResult<Vec<Vendor>>;
}

/// The delivery queue as operators see it: timelines.
#[async_trait]
pub trait QueueAdmin: Send + Sync {
    /// Every delivery of one assessment, delivered ones included, in sequence order (the
    /// assessment's timeline).
    async fn deliveries(&self, id: AssessmentId) -> StoreResult<Vec<Delivery>>;
}

/// Everything: what `hubctl` and the local hub hold.
pub trait AdminStore: Store + RegistryAdmin + QueueAdmin {}
impl<T: Store + RegistryAdmin + QueueAdmin + ?Sized> AdminStore for T {}
