//! DynamoDB adapter: one table keyed by `pk`/`sk`, TTL on `expires_at`, no index. Every state
//! change is a conditional UpdateItem or one TransactWriteItems, never a read followed by an
//! unconditional write, so concurrent Lambdas get exactly the guarantees `MemoryStore` gives with
//! its mutex. A failed condition is an answer (`false`, `Existing`, `Duplicate`, `Conflict`), never
//! an error. Candidate PII lives only on the order-body item, which expires on its own TTL.
//!
//! Items (`pk` / `sk`):
//! - `TENANT#<id>` / `TENANT`: the tenant and the hash of its current trigger token
//! - `TOKEN#<sha256 hex>` / `TOKEN`: which tenant a token hash belongs to
//! - `VENDOR#<id>` / `VENDOR`
//! - `ASSESSMENT#<uuid>` / `ASSESSMENT`: the assessment, with `version` for optimistic concurrency
//! - `ASSESSMENT#<uuid>` / `ORDER`: the vendor order body, until `expires_at`
//! - `ASSESSMENT#<uuid>` / `UPDATE#<seq, 20 digits>`: the outbox, sorted by sequence number
//! - `START#<tenant>#<type>#<sha256 hex of application id>` / `START`: the start-idempotency key
//! - `WEBHOOK#<vendor>#<webhook id>` / `WEBHOOK`: a processed callback, until `expires_at`

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, KeySchemaElement, KeyType, Put,
    ScalarAttributeType, TimeToLiveSpecification, TimeToLiveStatus, TransactWriteItem, Update,
};
use sha2::{Digest, Sha256};
use url::Url;

use super::{
    CallbackOutcome, CallbackWrite, CreateOutcome, NewAssessment, StartKey, Store, StoreError,
    StoreResult,
};
use crate::domain::{
    Assessment, AssessmentId, AssessmentTypeId, OutboxUpdate, Package, PackageId, PackageRef,
    Status, Tenant, TenantId, TokenHash, Vendor, VendorId,
};

type Item = HashMap<String, AttributeValue>;

/// How many times a write that lost a race re-reads and tries again before reporting
/// `Unavailable`. Races resolve in one or two rounds; more means something is hammering the item.
const MAX_ATTEMPTS: u32 = 5;

/// Bumps the optimistic-concurrency version like `memory::bump`; uses `:one` and `:now`.
const BUMP: &str = "#version = #version + :one, #updated_at_ms = :now";

#[derive(Clone)]
pub struct DynamoDbStore {
    client: Client,
    table: String,
}

impl DynamoDbStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Creates the table this store expects (on-demand billing, `pk`/`sk` strings, TTL on
    /// `expires_at`) and waits until it is active. Idempotent: an existing table is kept.
    pub async fn create_table(client: &Client, name: &str) -> Result<(), StoreError> {
        let attribute = |n: &str| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |n: &str, t| {
            KeySchemaElement::builder()
                .attribute_name(n)
                .key_type(t)
                .build()
        };
        let created = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(built(attribute("pk"))?)
            .attribute_definitions(built(attribute("sk"))?)
            .key_schema(built(key("pk", KeyType::Hash))?)
            .key_schema(built(key("sk", KeyType::Range))?)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) => {}
            Err(e) => return Err(unavailable("CreateTable", &e)),
        }
        // TTL can only be switched on once the table is active.
        client
            .wait_until_table_exists()
            .table_name(name)
            .wait(Duration::from_secs(120))
            .await
            .map_err(|_| {
                StoreError::Unavailable("CreateTable: table did not become active".into())
            })?;
        let ttl = client
            .describe_time_to_live()
            .table_name(name)
            .send()
            .await
            .map_err(|e| unavailable("DescribeTimeToLive", &e))?;
        let status = ttl
            .time_to_live_description()
            .and_then(|d| d.time_to_live_status());
        if !matches!(
            status,
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ) {
            let spec = TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("expires_at")
                .build();
            client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(built(spec)?)
                .send()
                .await
                .map_err(|e| unavailable("UpdateTimeToLive", &e))?;
        }
        Ok(())
    }

    async fn get(&self, op: &'static str, key: Item) -> StoreResult<Option<Item>> {
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map(|out| out.item)
            .map_err(|e| unavailable(op, &e))
    }

    /// A conditional UpdateItem; `Ok(false)` when the condition does not hold. A condition is
    /// required: UpdateItem on a missing key would otherwise create a stray item.
    async fn update(
        &self,
        op: &'static str,
        key: Item,
        update: &str,
        condition: &str,
        values: Vec<(String, AttributeValue)>,
    ) -> StoreResult<bool> {
        let (names, values) = expression_maps(&[update, condition], values);
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values);
        for attempt in 0..MAX_ATTEMPTS {
            match request.clone().send().await {
                Ok(_) => return Ok(true),
                Err(e) => match e.as_service_error() {
                    Some(s) if s.is_conditional_check_failed_exception() => return Ok(false),
                    // The item is part of a transaction in flight; nothing was written.
                    Some(s) if s.is_transaction_conflict_exception() => backoff(attempt).await,
                    _ => return Err(unavailable(op, &e)),
                },
            }
        }
        Err(contended(op))
    }

    fn put_op(
        &self,
        item: Item,
        condition: Option<&str>,
        values: Vec<(String, AttributeValue)>,
    ) -> StoreResult<TransactWriteItem> {
        let (names, values) = expression_maps(condition.as_slice(), values);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .build();
        Ok(TransactWriteItem::builder().put(built(put)?).build())
    }

    fn update_op(
        &self,
        key: Item,
        update: &str,
        condition: &str,
        values: Vec<(String, AttributeValue)>,
    ) -> StoreResult<TransactWriteItem> {
        let (names, values) = expression_maps(&[update, condition], values);
        let op = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .build();
        Ok(TransactWriteItem::builder().update(built(op)?).build())
    }

    fn delete_op(
        &self,
        key: Item,
        condition: &str,
        values: Vec<(String, AttributeValue)>,
    ) -> StoreResult<TransactWriteItem> {
        let (names, values) = expression_maps(&[condition], values);
        let op = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .build();
        Ok(TransactWriteItem::builder().delete(built(op)?).build())
    }

    /// Runs one transaction and sorts a cancellation into a condition failure (with which items
    /// failed) or contention with another transaction; anything else is `Unavailable`.
    async fn transact(&self, op: &'static str, items: Vec<TransactWriteItem>) -> StoreResult<Tx> {
        let e = match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => return Ok(Tx::Committed),
            Err(e) => e,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
            e.as_service_error()
        else {
            return Err(unavailable(op, &e));
        };
        let codes: Vec<&str> = cancelled
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().unwrap_or("None"))
            .collect();
        let failed: Vec<bool> = codes
            .iter()
            .map(|c| *c == "ConditionalCheckFailed")
            .collect();
        if failed.contains(&true) {
            return Ok(Tx::ConditionFailed(failed));
        }
        if codes.contains(&"TransactionConflict") {
            return Ok(Tx::Contended);
        }
        // Throttling, validation, capacity: the reason codes say which, the items are not ours
        // to log.
        let other = codes
            .iter()
            .find(|c| **c != "None")
            .unwrap_or(&"no reason given");
        Err(StoreError::Unavailable(format!(
            "{op}: transaction cancelled ({other})"
        )))
    }

    /// The tenant a token item points at, if it exists.
    async fn token_owner(&self, token: &TokenHash) -> StoreResult<Option<TenantId>> {
        self.get("token", token_key(token))
            .await?
            .map(|item| Fields::new("token", &item).parse("tenant_id", |v| TenantId::parse(v).ok()))
            .transpose()
    }

    /// The id the start key points at, if it exists.
    async fn start_key_owner(&self, key: &StartKey) -> StoreResult<Option<AssessmentId>> {
        self.get("create_assessment", start_key(key))
            .await?
            .map(|item| Fields::new("start key", &item).parse("assessment_id", parse_assessment_id))
            .transpose()
    }
}

/// How a transaction ended, when it did not fail outright.
enum Tx {
    Committed,
    /// Which items' conditions failed, in request order; nothing was written.
    ConditionFailed(Vec<bool>),
    /// Another transaction held one of the items; nothing was written, so trying again is safe.
    Contended,
}

/// Whether the condition of the `index`th item of a cancelled transaction failed.
fn failed_at(flags: &[bool], index: usize) -> bool {
    flags.get(index).copied().unwrap_or(false)
}

#[async_trait]
impl Store for DynamoDbStore {
    async fn put_tenant(&self, tenant: &Tenant, token: &TokenHash) -> StoreResult<()> {
        for attempt in 0..MAX_ATTEMPTS {
            let old = match self.get("put_tenant", tenant_key(&tenant.id)).await? {
                Some(item) => {
                    Some(Fields::new("tenant", &item).parse("token_hash", TokenHash::from_hex)?)
                }
                None => None,
            };
            // Conditional on the tenant still holding the token read above: of two concurrent
            // replacements, the loser re-reads and deletes the winner's token item instead of
            // leaving it behind.
            let (condition, values) = match old {
                Some(h) => ("#token_hash = :old", vec![val(":old", s(h.to_hex()))]),
                None => ("attribute_not_exists(#pk)", vec![]),
            };
            let mut ops = vec![
                self.put_op(tenant_item(tenant, token), Some(condition), values)?,
                self.put_op(token_item(token, &tenant.id), None, vec![])?,
            ];
            if let Some(old) = old.filter(|h| h != token) {
                // Only if it is still ours: tokens are random, but a hand-made reuse must not let
                // this tenant revoke another tenant's token.
                if self.token_owner(&old).await?.as_ref() == Some(&tenant.id) {
                    ops.push(self.delete_op(
                        token_key(&old),
                        "#tenant_id = :me",
                        vec![val(":me", s(tenant.id.as_str()))],
                    )?);
                }
            }
            match self.transact("put_tenant", ops).await? {
                Tx::Committed => return Ok(()),
                Tx::ConditionFailed(_) | Tx::Contended => backoff(attempt).await,
            }
        }
        Err(contended("put_tenant"))
    }

    async fn tenant_by_token(&self, token: &TokenHash) -> StoreResult<Option<Tenant>> {
        let Some(id) = self.token_owner(token).await? else {
            return Ok(None);
        };
        let Some(item) = self.get("tenant_by_token", tenant_key(&id)).await? else {
            return Ok(None);
        };
        let current = Fields::new("tenant", &item).parse("token_hash", TokenHash::from_hex)?;
        if !current.ct_eq(token) {
            return Ok(None);
        }
        let tenant = decode_tenant(id, &item)?;
        Ok((!tenant.disabled).then_some(tenant))
    }

    async fn tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        self.get("tenant", tenant_key(id))
            .await?
            .map(|item| decode_tenant(id.clone(), &item))
            .transpose()
    }

    async fn put_vendor(&self, vendor: &Vendor) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(vendor_item(vendor)))
            .send()
            .await
            .map_err(|e| unavailable("put_vendor", &e))?;
        Ok(())
    }

    async fn vendor(&self, id: &VendorId) -> StoreResult<Option<Vendor>> {
        self.get("vendor", vendor_key(id))
            .await?
            .map(|item| decode_vendor(id.clone(), &item))
            .transpose()
    }

    async fn create_assessment(&self, new: &NewAssessment) -> StoreResult<CreateOutcome> {
        let id = new.assessment.id;
        // `None`: the start key must not exist yet. `Some(old)`: take over a start key that
        // pointed at `old`, a finished assessment, only if it still points there.
        let mut take_over: Option<AssessmentId> = None;
        for attempt in 0..MAX_ATTEMPTS {
            let (condition, values) = match take_over {
                None => ("attribute_not_exists(#pk)", vec![]),
                Some(old) => (
                    "#assessment_id = :old",
                    vec![val(":old", s(old.to_string()))],
                ),
            };
            let start = item(
                start_key(&new.start_key),
                [("assessment_id", s(id.to_string()))],
            );
            let order = item(
                order_key(id),
                [
                    ("body", s(&new.order_body)),
                    ("expires_at", n(new.pii_expires_at_s)),
                ],
            );
            let ops = vec![
                self.put_op(start, Some(condition), values)?,
                self.put_op(
                    assessment_item(&new.assessment),
                    Some("attribute_not_exists(#pk)"),
                    vec![],
                )?,
                self.put_op(order, None, vec![])?,
            ];
            match self.transact("create_assessment", ops).await? {
                Tx::Committed => return Ok(CreateOutcome::Created),
                Tx::Contended => backoff(attempt).await,
                Tx::ConditionFailed(f) if failed_at(&f, 0) => {
                    let Some(owner) = self.start_key_owner(&new.start_key).await? else {
                        take_over = None;
                        continue;
                    };
                    match self.assessment(owner).await? {
                        Some(a) if !a.status.is_terminal() => {
                            return Ok(CreateOutcome::Existing(Box::new(a)));
                        }
                        // Terminal is final, so the owner cannot come back to life between this
                        // read and the conditional take-over. (A missing owner cannot happen,
                        // both are written together, but would be taken over the same way.)
                        _ => take_over = Some(owner),
                    }
                }
                Tx::ConditionFailed(_) => {
                    return Err(StoreError::Unavailable(
                        "create_assessment: assessment id already in use".into(),
                    ));
                }
            }
        }
        Err(contended("create_assessment"))
    }

    async fn assessment(&self, id: AssessmentId) -> StoreResult<Option<Assessment>> {
        self.get("assessment", assessment_key(id))
            .await?
            .map(|item| decode_assessment(&item))
            .transpose()
    }

    async fn order_body(&self, id: AssessmentId) -> StoreResult<Option<String>> {
        let Some(item) = self.get("order_body", order_key(id)).await? else {
            return Ok(None);
        };
        let f = Fields::new("order", &item);
        // TTL deletion lags by up to days; expired PII must not be used in the meantime.
        if f.n::<i64>("expires_at")? < now_s() {
            return Ok(None);
        }
        Ok(Some(f.s("body")?.to_owned()))
    }

    async fn claim_order(&self, id: AssessmentId, now_ms: i64, until_ms: i64) -> StoreResult<bool> {
        self.update(
            "claim_order",
            assessment_key(id),
            &format!("SET #order_lease_until_ms = :until, {BUMP}"),
            "#status = :ordering AND #order_lease_until_ms <= :now",
            vec![
                val(":until", n(until_ms)),
                val(":now", n(now_ms)),
                val(":one", n(1)),
                status_val(Status::Ordering),
            ],
        )
        .await
    }

    async fn record_order_accepted(
        &self,
        id: AssessmentId,
        vendor_reference: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<()> {
        let reference = if vendor_reference.is_some() {
            ", #vendor_reference = :reference"
        } else {
            ""
        };
        let values = || {
            let mut v = vec![
                val(":zero", n(0)),
                val(":now", n(now_ms)),
                val(":one", n(1)),
            ];
            v.extend(vendor_reference.map(|r| val(":reference", s(r))));
            v
        };
        let mut ordered = values();
        ordered.extend([status_val(Status::Ordering), status_val(Status::Ordered)]);
        let moved = self
            .update(
                "record_order_accepted",
                assessment_key(id),
                &format!(
                    "SET #status = :ordered, #order_lease_until_ms = :zero, {BUMP}{reference}"
                ),
                "#status = :ordering",
                ordered,
            )
            .await?;
        if !moved {
            // A callback already moved it past `ordering` (or it does not exist): keep that
            // status, still record the reference and release the lease.
            self.update(
                "record_order_accepted",
                assessment_key(id),
                &format!("SET #order_lease_until_ms = :zero, {BUMP}{reference}"),
                "attribute_exists(#pk)",
                values(),
            )
            .await?;
        }
        Ok(())
    }

    async fn record_order_rejected(
        &self,
        id: AssessmentId,
        message: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        self.update(
            "record_order_rejected",
            assessment_key(id),
            &format!(
                "SET #status = :rejected, #rejection_message = :message, \
                 #order_lease_until_ms = :zero, {BUMP}"
            ),
            "#status = :ordering",
            vec![
                val(":message", s(message)),
                val(":zero", n(0)),
                val(":now", n(now_ms)),
                val(":one", n(1)),
                status_val(Status::Ordering),
                status_val(Status::Rejected),
            ],
        )
        .await
    }

    async fn release_order(&self, id: AssessmentId) -> StoreResult<()> {
        // No `now` here, so like `MemoryStore` this bumps the version but not `updated_at_ms`.
        self.update(
            "release_order",
            assessment_key(id),
            "SET #order_lease_until_ms = :zero, #version = #version + :one",
            "attribute_exists(#pk)",
            vec![val(":zero", n(0)), val(":one", n(1))],
        )
        .await?;
        Ok(())
    }

    async fn record_cancelled(&self, id: AssessmentId, now_ms: i64) -> StoreResult<bool> {
        let live: Vec<Status> = Status::ALL
            .into_iter()
            .filter(|s| !s.is_terminal())
            .collect();
        let placeholders: Vec<String> = live.iter().map(|s| format!(":{}", s.as_str())).collect();
        let mut values = vec![
            val(":cancelled", s(Status::Cancelled.as_str())),
            val(":zero", n(0)),
            val(":now", n(now_ms)),
            val(":one", n(1)),
        ];
        values.extend(live.into_iter().map(status_val));
        self.update(
            "record_cancelled",
            assessment_key(id),
            &format!("SET #status = :cancelled, #order_lease_until_ms = :zero, {BUMP}"),
            &format!("#status IN ({})", placeholders.join(", ")),
            values,
        )
        .await
    }

    async fn apply_callback(&self, w: &CallbackWrite) -> StoreResult<CallbackOutcome> {
        let marker = item(
            webhook_key(&w.vendor_id, &w.webhook_id),
            [("expires_at", n(w.marker_expires_at_s))],
        );
        for attempt in 0..MAX_ATTEMPTS {
            let mut ops =
                vec![self.put_op(marker.clone(), Some("attribute_not_exists(#pk)"), vec![])?];
            if let Some(c) = &w.change {
                // The version condition below guarantees that `update_seq` has not moved since
                // this read, so `seq` is exactly the stored `update_seq + 1`. A missing or
                // changed assessment fails that condition and comes back as `Conflict`.
                let seq = self
                    .assessment(w.assessment_id)
                    .await?
                    .map_or(0, |a| a.update_seq)
                    + 1;
                let (label_set, label_remove) = if c.status_label.is_some() {
                    (", #status_label = :label", "")
                } else {
                    ("", " REMOVE #status_label")
                };
                let mut values = vec![
                    val(":expected", n(c.expected_version)),
                    val(":status", s(c.status.as_str())),
                    val(":seq", n(seq)),
                    val(":update_ms", n(c.update_ms)),
                    val(":now", n(c.now_ms)),
                    val(":one", n(1)),
                ];
                values.extend(c.status_label.as_deref().map(|l| val(":label", s(l))));
                ops.push(self.update_op(
                    assessment_key(w.assessment_id),
                    &format!(
                        "SET #status = :status, #update_seq = :seq, #last_update_ms = :update_ms, \
                         {BUMP}{label_set}{label_remove}"
                    ),
                    "#version = :expected",
                    values,
                )?);
                let update = item(
                    update_key(w.assessment_id, seq),
                    [
                        ("body", s(&c.update_body)),
                        ("delivered", AttributeValue::Bool(false)),
                        ("attempts", n(0)),
                        ("lease_until_ms", n(0)),
                    ],
                );
                ops.push(self.put_op(update, Some("attribute_not_exists(#pk)"), vec![])?);
            }
            match self.transact("apply_callback", ops).await? {
                Tx::Committed => return Ok(CallbackOutcome::Applied),
                Tx::ConditionFailed(f) if failed_at(&f, 0) => {
                    return Ok(CallbackOutcome::Duplicate);
                }
                Tx::ConditionFailed(f) if failed_at(&f, 1) => {
                    return Ok(CallbackOutcome::Conflict);
                }
                Tx::ConditionFailed(_) => {
                    // The version matched yet the next sequence number was taken: the outbox and
                    // the assessment disagree.
                    return Err(StoreError::Corrupt(
                        "outbox update already exists for the next update_seq".into(),
                    ));
                }
                Tx::Contended => backoff(attempt).await,
            }
        }
        Err(contended("apply_callback"))
    }

    async fn pending_updates(&self, id: AssessmentId) -> StoreResult<Vec<OutboxUpdate>> {
        let (names, values) = expression_maps(
            &[
                "#pk = :pk AND begins_with(#sk, :prefix)",
                "#delivered = :false",
            ],
            vec![
                val(":pk", s(assessment_pk(id))),
                val(":prefix", s("UPDATE#")),
                val(":false", AttributeValue::Bool(false)),
            ],
        );
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .filter_expression("#delivered = :false")
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .consistent_read(true)
            .scan_index_forward(true);
        let mut pending = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = query
                .clone()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable("pending_updates", &e))?;
            for item in page.items.unwrap_or_default() {
                pending.push(decode_update(id, &item)?);
            }
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(pending),
            }
        }
    }

    async fn claim_update(
        &self,
        id: AssessmentId,
        seq: u64,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<bool> {
        self.update(
            "claim_update",
            update_key(id, seq),
            "SET #lease_until_ms = :until, #attempts = #attempts + :one",
            "#delivered = :false AND #lease_until_ms <= :now",
            vec![
                val(":until", n(until_ms)),
                val(":now", n(now_ms)),
                val(":one", n(1)),
                val(":false", AttributeValue::Bool(false)),
            ],
        )
        .await
    }

    async fn mark_update_delivered(
        &self,
        id: AssessmentId,
        seq: u64,
        _now_ms: i64,
    ) -> StoreResult<()> {
        self.update(
            "mark_update_delivered",
            update_key(id, seq),
            "SET #delivered = :true, #lease_until_ms = :zero REMOVE #last_error",
            "attribute_exists(#pk)",
            vec![val(":true", AttributeValue::Bool(true)), val(":zero", n(0))],
        )
        .await?;
        Ok(())
    }

    async fn release_update(&self, id: AssessmentId, seq: u64, error: &str) -> StoreResult<()> {
        self.update(
            "release_update",
            update_key(id, seq),
            "SET #lease_until_ms = :zero, #last_error = :error",
            "attribute_exists(#pk)",
            vec![val(":zero", n(0)), val(":error", s(error))],
        )
        .await?;
        Ok(())
    }
}

// --- keys ---

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn tenant_key(id: &TenantId) -> Item {
    key(format!("TENANT#{id}"), "TENANT")
}

fn token_key(token: &TokenHash) -> Item {
    key(format!("TOKEN#{}", token.to_hex()), "TOKEN")
}

fn vendor_key(id: &VendorId) -> Item {
    key(format!("VENDOR#{id}"), "VENDOR")
}

fn assessment_pk(id: AssessmentId) -> String {
    format!("ASSESSMENT#{id}")
}

fn assessment_key(id: AssessmentId) -> Item {
    key(assessment_pk(id), "ASSESSMENT")
}

fn order_key(id: AssessmentId) -> Item {
    key(assessment_pk(id), "ORDER")
}

/// Zero-padded so that the string order of sort keys is the numeric order of sequence numbers.
fn update_key(id: AssessmentId, seq: u64) -> Item {
    key(assessment_pk(id), &format!("UPDATE#{seq:020}"))
}

/// The application id is Ashby's free-form string: hashed so that no character in it can run into
/// the `#` separators or the key-size limit.
fn start_key(k: &StartKey) -> Item {
    let application = hex::encode(Sha256::digest(k.application_id.as_bytes()));
    key(
        format!(
            "START#{}#{}#{application}",
            k.tenant_id, k.assessment_type_id
        ),
        "START",
    )
}

/// Vendor ids are slugs without `#`, so the vendor part cannot bleed into the webhook id.
fn webhook_key(vendor: &VendorId, webhook_id: &str) -> Item {
    key(format!("WEBHOOK#{vendor}#{webhook_id}"), "WEBHOOK")
}

// --- encoding ---

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn val(placeholder: &str, v: AttributeValue) -> (String, AttributeValue) {
    (placeholder.to_owned(), v)
}

/// `:<status>` bound to that status, e.g. `:ordering`.
fn status_val(status: Status) -> (String, AttributeValue) {
    (format!(":{}", status.as_str()), s(status.as_str()))
}

fn item<'a>(key: Item, attributes: impl IntoIterator<Item = (&'a str, AttributeValue)>) -> Item {
    let mut item = key;
    item.extend(attributes.into_iter().map(|(k, v)| (k.to_owned(), v)));
    item
}

/// Absent rather than null when `None`, so that `REMOVE` and "never set" look the same.
fn put_opt(item: &mut Item, name: &str, value: Option<&str>) {
    if let Some(v) = value {
        item.insert(name.to_owned(), s(v));
    }
}

fn tenant_item(t: &Tenant, token: &TokenHash) -> Item {
    let packages = t.packages.iter().map(|p| s(p.to_string())).collect();
    item(
        tenant_key(&t.id),
        [
            ("name", s(&t.name)),
            ("ashby_base_url", s(t.ashby_base_url.as_str())),
            ("packages", AttributeValue::L(packages)),
            ("disabled", AttributeValue::Bool(t.disabled)),
            ("token_hash", s(token.to_hex())),
        ],
    )
}

fn token_item(token: &TokenHash, tenant: &TenantId) -> Item {
    item(token_key(token), [("tenant_id", s(tenant.as_str()))])
}

fn vendor_item(v: &Vendor) -> Item {
    let packages = v
        .packages
        .iter()
        .map(|p| {
            AttributeValue::M(HashMap::from([
                ("id".to_owned(), s(p.id.as_str())),
                ("name".to_owned(), s(&p.name)),
                ("description".to_owned(), s(&p.description)),
            ]))
        })
        .collect();
    item(
        vendor_key(&v.id),
        [
            ("name", s(&v.name)),
            ("order_url", s(v.order_url.as_str())),
            ("packages", AttributeValue::L(packages)),
        ],
    )
}

fn assessment_item(a: &Assessment) -> Item {
    let mut i = item(
        assessment_key(a.id),
        [
            ("id", s(a.id.to_string())),
            ("tenant_id", s(a.tenant_id.as_str())),
            ("vendor_id", s(a.vendor_id.as_str())),
            ("package_id", s(a.package_id.as_str())),
            ("assessment_type_id", s(a.assessment_type_id.to_string())),
            ("application_id", s(&a.application_id)),
            ("status", s(a.status.as_str())),
            ("created_at_ms", n(a.created_at_ms)),
            ("updated_at_ms", n(a.updated_at_ms)),
            ("last_update_ms", n(a.last_update_ms)),
            ("update_seq", n(a.update_seq)),
            ("order_lease_until_ms", n(a.order_lease_until_ms)),
            ("version", n(a.version)),
        ],
    );
    put_opt(&mut i, "status_label", a.status_label.as_deref());
    put_opt(&mut i, "vendor_reference", a.vendor_reference.as_deref());
    put_opt(&mut i, "rejection_message", a.rejection_message.as_deref());
    i
}

type Names = HashMap<String, String>;
type Values = HashMap<String, AttributeValue>;

/// Expression attribute names and values for a set of expressions. Every attribute in an
/// expression is written `#name` (reserved words such as `status` then need no special care), and
/// only the `:values` the expressions use are sent, since DynamoDB rejects unused ones.
fn expression_maps(
    expressions: &[&str],
    values: Vec<(String, AttributeValue)>,
) -> (Option<Names>, Option<Values>) {
    let tokens: HashSet<&str> = expressions
        .iter()
        .flat_map(|e| e.split(|c: char| !(c.is_ascii_alphanumeric() || "_#:".contains(c))))
        .collect();
    let names: Names = tokens
        .iter()
        .filter_map(|t| Some((t.to_string(), t.strip_prefix('#')?.to_owned())))
        .collect();
    let values: Values = values
        .into_iter()
        .filter(|(k, _)| tokens.contains(k.as_str()))
        .collect();
    // DynamoDB rejects empty maps as well.
    (
        (!names.is_empty()).then_some(names),
        (!values.is_empty()).then_some(values),
    )
}

// --- decoding ---

/// Typed access to an item's attributes; a missing or mistyped attribute is `Corrupt`, named.
struct Fields<'a> {
    kind: &'static str,
    item: &'a Item,
}

impl<'a> Fields<'a> {
    fn new(kind: &'static str, item: &'a Item) -> Self {
        Self { kind, item }
    }

    fn corrupt(&self, name: &str) -> StoreError {
        StoreError::Corrupt(format!("{} attribute {name}", self.kind))
    }

    fn s(&self, name: &str) -> StoreResult<&'a str> {
        match self.item.get(name) {
            Some(AttributeValue::S(v)) => Ok(v),
            _ => Err(self.corrupt(name)),
        }
    }

    fn opt_s(&self, name: &str) -> StoreResult<Option<String>> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(true)) => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
            _ => Err(self.corrupt(name)),
        }
    }

    fn n<T: FromStr>(&self, name: &str) -> StoreResult<T> {
        match self.item.get(name) {
            Some(AttributeValue::N(v)) => v.parse().map_err(|_| self.corrupt(name)),
            _ => Err(self.corrupt(name)),
        }
    }

    fn bool(&self, name: &str) -> StoreResult<bool> {
        match self.item.get(name) {
            Some(AttributeValue::Bool(v)) => Ok(*v),
            _ => Err(self.corrupt(name)),
        }
    }

    fn list(&self, name: &str) -> StoreResult<&'a [AttributeValue]> {
        match self.item.get(name) {
            Some(AttributeValue::L(v)) => Ok(v),
            _ => Err(self.corrupt(name)),
        }
    }

    fn parse<T>(&self, name: &str, f: impl FnOnce(&str) -> Option<T>) -> StoreResult<T> {
        f(self.s(name)?).ok_or_else(|| self.corrupt(name))
    }
}

fn parse_assessment_id(v: &str) -> Option<AssessmentId> {
    AssessmentId::parse(v).ok()
}

fn decode_tenant(id: TenantId, item: &Item) -> StoreResult<Tenant> {
    let f = Fields::new("tenant", item);
    let packages = f
        .list("packages")?
        .iter()
        .map(|p| match p {
            AttributeValue::S(v) => PackageRef::parse(v).ok(),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| f.corrupt("packages"))?;
    Ok(Tenant {
        id,
        name: f.s("name")?.to_owned(),
        ashby_base_url: f.parse("ashby_base_url", |v| Url::parse(v).ok())?,
        packages,
        disabled: f.bool("disabled")?,
    })
}

fn decode_vendor(id: VendorId, item: &Item) -> StoreResult<Vendor> {
    let f = Fields::new("vendor", item);
    let packages = f
        .list("packages")?
        .iter()
        .map(|p| {
            let AttributeValue::M(m) = p else {
                return Err(f.corrupt("packages"));
            };
            let package = Fields::new("vendor package", m);
            Ok(Package {
                id: package.parse("id", |v| PackageId::parse(v).ok())?,
                name: package.s("name")?.to_owned(),
                description: package.opt_s("description")?.unwrap_or_default(),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Vendor {
        id,
        name: f.s("name")?.to_owned(),
        order_url: f.parse("order_url", |v| Url::parse(v).ok())?,
        packages,
    })
}

fn decode_assessment(item: &Item) -> StoreResult<Assessment> {
    let f = Fields::new("assessment", item);
    Ok(Assessment {
        id: f.parse("id", parse_assessment_id)?,
        tenant_id: f.parse("tenant_id", |v| TenantId::parse(v).ok())?,
        vendor_id: f.parse("vendor_id", |v| VendorId::parse(v).ok())?,
        package_id: f.parse("package_id", |v| PackageId::parse(v).ok())?,
        assessment_type_id: f.parse("assessment_type_id", |v| AssessmentTypeId::parse(v).ok())?,
        application_id: f.s("application_id")?.to_owned(),
        status: f.parse("status", Status::parse)?,
        status_label: f.opt_s("status_label")?,
        vendor_reference: f.opt_s("vendor_reference")?,
        rejection_message: f.opt_s("rejection_message")?,
        created_at_ms: f.n("created_at_ms")?,
        updated_at_ms: f.n("updated_at_ms")?,
        last_update_ms: f.n("last_update_ms")?,
        update_seq: f.n("update_seq")?,
        order_lease_until_ms: f.n("order_lease_until_ms")?,
        version: f.n("version")?,
    })
}

fn decode_update(id: AssessmentId, item: &Item) -> StoreResult<OutboxUpdate> {
    let f = Fields::new("outbox update", item);
    Ok(OutboxUpdate {
        assessment_id: id,
        seq: f.parse("sk", |v| v.strip_prefix("UPDATE#")?.parse().ok())?,
        body: f.s("body")?.to_owned(),
        delivered: f.bool("delivered")?,
        attempts: f.n("attempts")?,
        lease_until_ms: f.n("lease_until_ms")?,
        last_error: f.opt_s("last_error")?,
    })
}

// --- errors and timing ---

fn built<T>(r: Result<T, BuildError>) -> StoreResult<T> {
    r.map_err(|_| StoreError::Unavailable("could not build a DynamoDB request".into()))
}

fn unavailable<E: ProvideErrorMetadata, R>(op: &str, e: &SdkError<E, R>) -> StoreError {
    StoreError::Unavailable(format!("{op}: {}", describe(e)))
}

fn contended(op: &str) -> StoreError {
    StoreError::Unavailable(format!(
        "{op}: still contended after {MAX_ATTEMPTS} attempts"
    ))
}

/// The error code, not the service's message: messages can quote key values back.
fn describe<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> String {
    match e {
        SdkError::ServiceError(s) => s.err().code().unwrap_or("unknown service error").to_owned(),
        SdkError::TimeoutError(_) => "timed out".into(),
        SdkError::DispatchFailure(_) => "could not reach DynamoDB".into(),
        SdkError::ResponseError(_) => "unreadable response".into(),
        SdkError::ConstructionFailure(_) => "could not build the request".into(),
        _ => "unknown error".into(),
    }
}

/// Waits before retrying a write that lost a race. Full jitter over a window that doubles each
/// attempt spreads the losers out, so that they do not collide again in lockstep.
async fn backoff(attempt: u32) {
    let window_ms = 20u64 << attempt.min(6);
    tokio::time::sleep(Duration::from_millis(rand::random_range(1..=window_ms))).await;
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assessment() -> Assessment {
        let package = PackageRef::parse("acme/basic").expect("valid ref");
        Assessment {
            id: AssessmentId::new(),
            tenant_id: TenantId::parse("t1").expect("valid id"),
            vendor_id: package.vendor.clone(),
            package_id: package.package.clone(),
            assessment_type_id: package.type_id(),
            application_id: "app-1".into(),
            status: Status::InProgress,
            status_label: Some("Waiting for candidate".into()),
            vendor_reference: None,
            rejection_message: Some("no".into()),
            created_at_ms: 1,
            updated_at_ms: 2,
            last_update_ms: 3,
            update_seq: 4,
            order_lease_until_ms: 5,
            version: 6,
        }
    }

    #[test]
    fn all_statuses_is_complete() {
        // Exhaustive: adding a status stops this compiling, as a reminder to extend the list.
        let index = |s: Status| match s {
            Status::Ordering => 0,
            Status::Ordered => 1,
            Status::InProgress => 2,
            Status::Completed => 3,
            Status::Cancelled => 4,
            Status::Failed => 5,
            Status::Expired => 6,
            Status::Rejected => 7,
        };
        for (i, s) in Status::ALL.into_iter().enumerate() {
            assert_eq!(index(s), i);
        }
    }

    #[test]
    fn an_assessment_round_trips_through_its_item() {
        let a = assessment();
        assert_eq!(decode_assessment(&assessment_item(&a)), Ok(a));
    }

    #[test]
    fn a_tenant_and_a_vendor_round_trip_through_their_items() {
        let tenant = Tenant {
            id: TenantId::parse("t1").expect("valid id"),
            name: "T".into(),
            ashby_base_url: Url::parse("https://api.ashbyhq.com").expect("valid url"),
            packages: vec![PackageRef::parse("acme/basic").expect("valid ref")],
            disabled: true,
        };
        let token = TokenHash::of(&secrecy::SecretString::from("tok"));
        let item = tenant_item(&tenant, &token);
        assert_eq!(decode_tenant(tenant.id.clone(), &item), Ok(tenant));
        let vendor = Vendor {
            id: VendorId::parse("acme").expect("valid id"),
            name: "Acme".into(),
            order_url: Url::parse("https://acme.example/orders").expect("valid url"),
            packages: vec![Package {
                id: PackageId::parse("basic").expect("valid id"),
                name: "Basic".into(),
                description: String::new(),
            }],
        };
        assert_eq!(
            decode_vendor(vendor.id.clone(), &vendor_item(&vendor)),
            Ok(vendor)
        );
    }

    #[test]
    fn a_bad_attribute_is_reported_as_corrupt_by_name_without_its_value() {
        let mut item = assessment_item(&assessment());
        item.insert("status".into(), s("s3cret-status"));
        let err = decode_assessment(&item).expect_err("bad status");
        assert_eq!(
            err,
            StoreError::Corrupt("assessment attribute status".into())
        );
        item.remove("version");
        item.insert("status".into(), s("ordering"));
        assert_eq!(
            decode_assessment(&item),
            Err(StoreError::Corrupt("assessment attribute version".into()))
        );
    }

    #[test]
    fn update_sort_keys_sort_numerically() {
        let id = AssessmentId::new();
        let sk = |seq| match update_key(id, seq).remove("sk") {
            Some(AttributeValue::S(v)) => v,
            _ => panic!("sk is a string"),
        };
        assert!(sk(9) < sk(10));
        assert!(sk(99) < sk(100));
        assert!(sk(u64::MAX - 1) < sk(u64::MAX));
    }

    #[test]
    fn start_keys_hash_the_application_id() {
        let package = PackageRef::parse("acme/basic").expect("valid ref");
        let k = |application_id: &str| StartKey {
            tenant_id: TenantId::parse("t1").expect("valid id"),
            application_id: application_id.into(),
            assessment_type_id: package.type_id(),
        };
        let pk = |key: &StartKey| match start_key(key).remove("pk") {
            Some(AttributeValue::S(v)) => v,
            _ => panic!("pk is a string"),
        };
        let odd = pk(&k("a#b/ünï"));
        assert!(!odd.contains("ünï") && odd.matches('#').count() == 3);
        assert_ne!(odd, pk(&k("a#b/üni")));
        assert_eq!(odd, pk(&k("a#b/ünï")));
    }

    #[test]
    fn expression_maps_alias_every_name_and_drop_unused_values() {
        let (names, values) = expression_maps(
            &[
                "SET #status = :s, #version = #version + :one",
                "attribute_exists(#pk)",
            ],
            vec![val(":s", s("x")), val(":one", n(1)), val(":unused", n(2))],
        );
        let names = names.expect("names");
        assert_eq!(names.get("#status").map(String::as_str), Some("status"));
        assert_eq!(names.get("#pk").map(String::as_str), Some("pk"));
        assert_eq!(names.len(), 3);
        let values = values.expect("values");
        assert!(values.contains_key(":s") && values.contains_key(":one"));
        assert!(!values.contains_key(":unused"));
        assert_eq!(expression_maps(&[], vec![val(":x", n(1))]), (None, None));
    }
}
