//! DynamoDB adapter: one table keyed by `pk`/`sk`, TTL on `expires_at`, one sparse index (`due`).
//! Every state change is a conditional UpdateItem or one TransactWriteItems, never a read followed
//! by an unconditional write, so concurrent Lambdas get exactly the guarantees `MemoryStore` gives
//! with its mutex. A failed condition is an answer (`false`, `Existing`, `Duplicate`, `Conflict`),
//! never an error. Candidate PII lives only on vendor-order delivery items, which expire on their
//! own TTL.
//!
//! Items (`pk` / `sk`):
//! - `TENANT#<id>` / `TENANT`: the tenant, its trigger tokens' hashes (`tokens`: hash → when
//!   added) and `rev`, a random value renewed by every write, for optimistic concurrency
//! - `TOKEN#<sha256 hex>` / `TOKEN`: which tenant a token hash belongs to; a token is valid only
//!   while this item points at the tenant and the tenant lists the hash
//! - `VENDOR#<id>` / `VENDOR`: the vendor and its `rev`
//! - `ASSESSMENT#<uuid>` / `ASSESSMENT`: the assessment, with `version` for optimistic concurrency
//! - `ASSESSMENT#<uuid>` / `DELIVERY#<seq, 20 digits>`: the delivery queue, sorted by sequence
//!   number; a vendor order (candidate PII) only until `expires_at`
//! - `START#<tenant>#<type>#<sha256 hex of application id>` / `START`: the start-idempotency key
//! - `WEBHOOK#<vendor>#<webhook id>` / `WEBHOOK`: a processed callback, until `expires_at`
//!
//! Index `due` (keys only, `gsi1pk` / `gsi1sk`), eventually consistent, so every claim it leads to
//! is conditional on the delivery itself:
//! - `DUE` / `<next attempt ms, 20 digits>#<uuid>#<seq, 20 digits>`: a pending delivery
//! - `STUCK` / `<created ms, 20 digits>#<uuid>#<seq, 20 digits>`: a parked or dead delivery
//! - a delivered delivery has neither attribute, so it leaves the index

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CreateGlobalSecondaryIndexAction, Delete,
    GlobalSecondaryIndex, GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, Put, ScalarAttributeType, TimeToLiveSpecification,
    TimeToLiveStatus, TransactWriteItem, Update,
};
use sha2::{Digest, Sha256};
use url::Url;

use crate::clock::Timestamp;
use crate::domain::{
    Assessment, AssessmentId, AssessmentTypeId, Delivery, DeliveryKind, DeliveryState, NewDelivery,
    Package, PackageId, PackageRef, Status, Tenant, TenantId, TokenHash, Vendor, VendorId,
};
use crate::ports::{
    Assessments, Change, ChangeOutcome, ChangeWrite, CreateOutcome, DeliveryQueue, DueRef,
    MAX_TENANT_TOKENS, NewAssessment, QueueAdmin, Registry, RegistryAdmin, RegistryOutcome, Retry,
    StartKey, StoreError, StoreResult, TenantEntry, TenantToken,
};

type Item = HashMap<String, AttributeValue>;

/// How many times a write that lost a race re-reads and tries again before reporting
/// `Unavailable`. Races resolve in one or two rounds; more means something is hammering the item.
const MAX_ATTEMPTS: u32 = 5;

/// Bumps the optimistic-concurrency version like `memory::bump`; uses `:one` and `:now`.
const BUMP: &str = "#version = #version + :one, #updated_at_ms = :now";

/// The sparse index of deliveries not yet delivered, and its two partitions.
const DUE_INDEX: &str = "due";
const DUE: &str = "DUE";
const STUCK: &str = "STUCK";

/// The sort-key prefix of delivery items.
const DELIVERY_PREFIX: &str = "DELIVERY#";

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

    /// Creates the table this store expects (on-demand billing, `pk`/`sk` strings, the sparse
    /// `due` index, TTL on `expires_at`) and waits until it is active. Idempotent: an existing
    /// table is kept, and given the `due` index if it lacks it.
    pub async fn create_table(client: &Client, name: &str) -> Result<(), StoreError> {
        let index = GlobalSecondaryIndex::builder()
            .index_name(DUE_INDEX)
            .set_key_schema(Some(due_index_keys()?))
            .projection(keys_only())
            .build();
        let mut attributes = vec![string_attribute("pk")?, string_attribute("sk")?];
        attributes.extend(due_index_attributes()?);
        let created = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .set_attribute_definitions(Some(attributes))
            .key_schema(key_element("pk", KeyType::Hash)?)
            .key_schema(key_element("sk", KeyType::Range)?)
            .global_secondary_indexes(built(index)?)
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
        Self::ensure_due_index(client, name).await?;
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

    /// Adds the `due` index to a table made before it existed, and waits until it is active.
    async fn ensure_due_index(client: &Client, name: &str) -> Result<(), StoreError> {
        let mut added = false;
        for _ in 0..150 {
            let described = client
                .describe_table()
                .table_name(name)
                .send()
                .await
                .map_err(|e| unavailable("DescribeTable", &e))?;
            let status = described
                .table()
                .map(|t| t.global_secondary_indexes())
                .unwrap_or_default()
                .iter()
                .find(|i| i.index_name() == Some(DUE_INDEX))
                .map(|i| i.index_status().cloned());
            match status {
                Some(Some(IndexStatus::Active) | None) => return Ok(()),
                Some(_) => {}
                None if added => {}
                None => {
                    let create = CreateGlobalSecondaryIndexAction::builder()
                        .index_name(DUE_INDEX)
                        .set_key_schema(Some(due_index_keys()?))
                        .projection(keys_only())
                        .build();
                    let update = GlobalSecondaryIndexUpdate::builder()
                        .create(built(create)?)
                        .build();
                    client
                        .update_table()
                        .table_name(name)
                        .set_attribute_definitions(Some(due_index_attributes()?))
                        .global_secondary_index_updates(update)
                        .send()
                        .await
                        .map_err(|e| unavailable("UpdateTable", &e))?;
                    added = true;
                }
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        Err(StoreError::Unavailable(
            "UpdateTable: the due index did not become active".into(),
        ))
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

    /// `Conflict` for a write whose change cannot apply, unless its marker is already recorded:
    /// then `Duplicate`, which wins as in `MemoryStore`. Versions only grow, so the change still
    /// cannot apply when the marker is found absent.
    async fn conflict_unless_duplicate(&self, w: &ChangeWrite) -> StoreResult<ChangeOutcome> {
        if let Some(m) = &w.marker
            && self
                .get("apply", webhook_key(&m.vendor_id, &m.webhook_id))
                .await?
                .is_some()
        {
            return Ok(ChangeOutcome::Duplicate);
        }
        Ok(ChangeOutcome::Conflict)
    }

    /// Runs a query page by page, until it ends or `limit` items came back.
    /// An assessment's deliveries in sequence order (consistent read), delivered ones only when
    /// `with_delivered`.
    async fn deliveries_of(
        &self,
        op: &'static str,
        id: AssessmentId,
        with_delivered: bool,
    ) -> StoreResult<Vec<Delivery>> {
        let keys = "#pk = :pk AND begins_with(#sk, :prefix)";
        let filter = "#state <> :delivered";
        let mut values = vec![
            val(":pk", s(assessment_pk(id))),
            val(":prefix", s(DELIVERY_PREFIX)),
        ];
        if !with_delivered {
            values.push(val(":delivered", state_name(&DeliveryState::Delivered)));
        }
        let expressions: &[&str] = if with_delivered {
            &[keys]
        } else {
            &[keys, filter]
        };
        let (names, values) = expression_maps(expressions, values);
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(keys)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .consistent_read(true)
            .scan_index_forward(true);
        if !with_delivered {
            query = query.filter_expression(filter);
        }
        self.query(op, query, usize::MAX)
            .await?
            .iter()
            .map(decode_delivery)
            .collect()
    }

    async fn query(
        &self,
        op: &'static str,
        query: QueryFluentBuilder,
        limit: usize,
    ) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        while items.len() < limit {
            let page = query
                .clone()
                .limit(i32::try_from(limit - items.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable(op, &e))?;
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        items.truncate(limit);
        Ok(items)
    }

    /// Entries of the `due` index in one partition (`DUE` or `STUCK`), in sort-key order, up to
    /// `upto` if given, at most `limit`. Keys only, and eventually consistent.
    async fn index(
        &self,
        op: &'static str,
        partition: &str,
        upto: Option<String>,
        limit: usize,
    ) -> StoreResult<Vec<Item>> {
        let keys = match upto {
            Some(_) => "#gsi1pk = :partition AND #gsi1sk <= :upto",
            None => "#gsi1pk = :partition",
        };
        let mut values = vec![val(":partition", s(partition))];
        values.extend(upto.map(|u| val(":upto", s(u))));
        let (names, values) = expression_maps(&[keys], values);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression(keys)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .scan_index_forward(true);
        self.query(op, query, limit).await
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

/// A tenant item as read, with the revision a conditional write of it must still find.
struct TenantState {
    tenant: Tenant,
    tokens: Vec<TenantToken>,
    rev: Option<String>,
}

/// The registry's reads and writes. Tenant and vendor items carry `rev`, a fresh random value on
/// every write: a write conditional on the `rev` it read cannot land on a change made since, not
/// even on a full replacement (a counter that `put_*` reset could come back to the same value).
impl DynamoDbStore {
    async fn tenant_state(
        &self,
        op: &'static str,
        id: &TenantId,
    ) -> StoreResult<Option<TenantState>> {
        let Some(item) = self.get(op, tenant_key(id)).await? else {
            return Ok(None);
        };
        Ok(Some(TenantState {
            tenant: decode_tenant(id.clone(), &item)?,
            tokens: decode_tokens(&item)?,
            rev: Fields::new("tenant", &item).opt_s("rev")?,
        }))
    }

    /// Writes `tenant` with `token` as its only token (`put_tenant` with `replace`,
    /// `create_tenant` without). `None`: lost a race with another write; nothing was written.
    async fn write_tenant(
        &self,
        op: &'static str,
        tenant: &Tenant,
        token: &TokenHash,
        replace: bool,
    ) -> StoreResult<Option<RegistryOutcome>> {
        let current = self.tenant_state(op, &tenant.id).await?;
        if current.is_some() && !replace {
            return Ok(Some(RegistryOutcome::AlreadyExists));
        }
        let owner = self.token_owner(token).await?;
        let taken_from = owner.clone().filter(|o| o != &tenant.id);
        if taken_from.is_some() && !replace {
            return Ok(Some(RegistryOutcome::TokenInUse));
        }
        let old_tokens = current
            .as_ref()
            .map(|c| c.tokens.clone())
            .unwrap_or_default();
        let added_at_ms = old_tokens
            .iter()
            .find(|t| t.hash == *token)
            .map_or_else(clock_ms, |t| t.added_at_ms);
        let (condition, values) = match &current {
            Some(c) => rev_condition(&c.rev),
            None => ("attribute_not_exists(#pk)", vec![]),
        };
        let only = [TenantToken {
            hash: *token,
            added_at_ms,
        }];
        let mut ops = vec![self.put_op(tenant_item(tenant, &only), Some(condition), values)?];
        ops.push(self.token_put_op(token, &tenant.id, owner.as_ref())?);
        if let Some(other) = &taken_from {
            // The token moves here, so its old tenant must stop listing it.
            if let Some(o) = self.tenant_state(op, other).await? {
                let rest: Vec<TenantToken> =
                    o.tokens.into_iter().filter(|t| t.hash != *token).collect();
                ops.push(self.tokens_op(other, &rest, &o.rev)?);
            }
        }
        for old in old_tokens.iter().filter(|t| t.hash != *token) {
            // Only if it is still ours: tokens are random, but a hand-made reuse must not let
            // this tenant revoke another tenant's token.
            if self.token_owner(&old.hash).await?.as_ref() == Some(&tenant.id) {
                ops.push(self.delete_op(
                    token_key(&old.hash),
                    "#tenant_id = :me",
                    vec![val(":me", s(tenant.id.as_str()))],
                )?);
            }
        }
        match self.transact(op, ops).await? {
            Tx::Committed => Ok(Some(RegistryOutcome::Done)),
            Tx::ConditionFailed(_) | Tx::Contended => Ok(None),
        }
    }

    /// Points a token item at `tenant`, conditional on it still pointing where it did when read.
    fn token_put_op(
        &self,
        token: &TokenHash,
        tenant: &TenantId,
        owner: Option<&TenantId>,
    ) -> StoreResult<TransactWriteItem> {
        let (condition, values) = match owner {
            None => ("attribute_not_exists(#pk)", vec![]),
            Some(o) => ("#tenant_id = :owner", vec![val(":owner", s(o.as_str()))]),
        };
        self.put_op(token_item(token, tenant), Some(condition), values)
    }

    /// Sets a tenant's token list, conditional on the `rev` read with it. Also drops the
    /// single `token_hash` of items written before tenants could hold several tokens.
    fn tokens_op(
        &self,
        id: &TenantId,
        tokens: &[TenantToken],
        rev: &Option<String>,
    ) -> StoreResult<TransactWriteItem> {
        let (condition, mut values) = rev_condition(rev);
        values.extend([
            val(":tokens", tokens_value(tokens)),
            val(":new_rev", new_rev()),
        ]);
        self.update_op(
            tenant_key(id),
            "SET #tokens = :tokens, #rev = :new_rev REMOVE #token_hash",
            condition,
            values,
        )
    }

    /// Every item whose sort key is `sk`: a paginated Scan of the whole table, filtered. Meant
    /// for operators listing the registry, never for a request path.
    async fn scan_kind(&self, op: &'static str, sk: &str) -> StoreResult<Vec<Item>> {
        let (names, values) = expression_maps(&["#sk = :sk"], vec![val(":sk", s(sk))]);
        let scan = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("#sk = :sk")
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .consistent_read(true);
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = scan
                .clone()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable(op, &e))?;
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }
}

/// The condition that an item still has the `rev` it was read with (`None`: read without one).
fn rev_condition(rev: &Option<String>) -> (&'static str, Vec<(String, AttributeValue)>) {
    match rev {
        Some(r) => ("#rev = :rev", vec![val(":rev", s(r))]),
        None => (
            "attribute_exists(#pk) AND attribute_not_exists(#rev)",
            vec![],
        ),
    }
}

fn new_rev() -> AttributeValue {
    s(uuid::Uuid::new_v4().simple().to_string())
}

/// The store's clock, for when a token was added.
fn clock_ms() -> Timestamp {
    crate::clock::Clock::now(&crate::clock::SystemClock)
}

#[async_trait]
impl Registry for DynamoDbStore {
    async fn tenant_by_token(&self, token: &TokenHash) -> StoreResult<Option<Tenant>> {
        let Some(id) = self.token_owner(token).await? else {
            return Ok(None);
        };
        let Some(state) = self.tenant_state("tenant_by_token", &id).await? else {
            return Ok(None);
        };
        // The token item alone is not enough: the tenant must list the hash too, so that a token
        // item left behind by hand finds nothing. Every listed hash is compared, in constant
        // time, so that the timing does not tell which one matched.
        let listed = state
            .tokens
            .iter()
            .fold(false, |found, t| t.hash.ct_eq(token) | found);
        Ok((listed && !state.tenant.disabled).then_some(state.tenant))
    }

    async fn tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        self.get("tenant", tenant_key(id))
            .await?
            .map(|item| decode_tenant(id.clone(), &item))
            .transpose()
    }

    async fn vendor(&self, id: &VendorId) -> StoreResult<Option<Vendor>> {
        self.get("vendor", vendor_key(id))
            .await?
            .map(|item| decode_vendor(id.clone(), &item))
            .transpose()
    }
}

#[async_trait]
impl Assessments for DynamoDbStore {
    async fn create_assessment(&self, new: &NewAssessment) -> StoreResult<CreateOutcome> {
        let id = new.assessment.id;
        // The order is the assessment's first delivery.
        let mut assessment = new.assessment.clone();
        assessment.update_seq += 1;
        let order = delivery_item(
            id,
            assessment.update_seq,
            &new.order,
            assessment.created_at_ms,
        );
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
            let ops = vec![
                self.put_op(start, Some(condition), values)?,
                self.put_op(
                    assessment_item(&assessment),
                    Some("attribute_not_exists(#pk)"),
                    vec![],
                )?,
                self.put_op(order.clone(), Some("attribute_not_exists(#pk)"), vec![])?,
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

    async fn apply(&self, w: &ChangeWrite) -> StoreResult<ChangeOutcome> {
        let id = w.assessment_id;
        for attempt in 0..MAX_ATTEMPTS {
            let mut ops = Vec::new();
            // The items whose failed condition means `Conflict`; the marker is always item 0.
            let mut guards = Vec::new();
            if let Some(m) = &w.marker {
                let marker = item(
                    webhook_key(&m.vendor_id, &m.webhook_id),
                    [("expires_at", n(m.expires_at_s))],
                );
                ops.push(self.put_op(marker, Some("attribute_not_exists(#pk)"), vec![])?);
            }
            if let Some(c) = &w.change {
                // No read here: the caller read the assessment to decide on the change. The
                // condition below holds the write to that snapshot (version and `update_seq`),
                // so the new deliveries take exactly the next sequence numbers.
                if w.settle.is_some_and(|seq| seq > c.expected_update_seq) {
                    // No such delivery; its key could even be one of the new deliveries'.
                    return self.conflict_unless_duplicate(w).await;
                }
                let last_seq = c.expected_update_seq + c.deliveries.len() as u64;
                let (update, values) = change_update(c, last_seq);
                guards.push(ops.len());
                ops.push(self.update_op(
                    assessment_key(id),
                    &update,
                    "attribute_exists(#pk) AND #version = :expected AND #update_seq = :expected_seq",
                    values,
                )?);
                for (seq, d) in (c.expected_update_seq + 1..).zip(&c.deliveries) {
                    let delivery = delivery_item(id, seq, d, c.now_ms);
                    ops.push(self.put_op(delivery, Some("attribute_not_exists(#pk)"), vec![])?);
                }
            }
            if let Some(seq) = w.settle {
                guards.push(ops.len());
                ops.push(self.update_op(
                    delivery_key(id, seq),
                    "SET #state = :delivered, #lease_until_ms = :zero REMOVE #gsi1pk, #gsi1sk",
                    "attribute_exists(#pk) AND #state <> :delivered",
                    vec![
                        val(":delivered", state_name(&DeliveryState::Delivered)),
                        val(":zero", n(0)),
                    ],
                )?);
            }
            if ops.is_empty() {
                return Ok(ChangeOutcome::Applied);
            }
            match self.transact("apply", ops).await? {
                Tx::Committed => return Ok(ChangeOutcome::Applied),
                Tx::Contended => backoff(attempt).await,
                Tx::ConditionFailed(f) if w.marker.is_some() && failed_at(&f, 0) => {
                    return Ok(ChangeOutcome::Duplicate);
                }
                Tx::ConditionFailed(f) if guards.iter().any(|&i| failed_at(&f, i)) => {
                    return Ok(ChangeOutcome::Conflict);
                }
                Tx::ConditionFailed(_) => {
                    // The version matched yet a next sequence number was taken: the deliveries
                    // and the assessment disagree.
                    return Err(StoreError::Corrupt(
                        "delivery already exists for the next update_seq".into(),
                    ));
                }
            }
        }
        Err(contended("apply"))
    }
}

#[async_trait]
impl DeliveryQueue for DynamoDbStore {
    async fn open_deliveries(&self, id: AssessmentId) -> StoreResult<Vec<Delivery>> {
        self.deliveries_of("open_deliveries", id, false).await
    }

    async fn claim_delivery(
        &self,
        id: AssessmentId,
        seq: u64,
        now_ms: Timestamp,
        until_ms: Timestamp,
    ) -> StoreResult<bool> {
        self.update(
            "claim_delivery",
            delivery_key(id, seq),
            "SET #lease_until_ms = :until, #attempts = #attempts + :one",
            "attribute_exists(#pk) AND #state = :pending AND #lease_until_ms <= :now",
            vec![
                val(":until", n(until_ms)),
                val(":now", n(now_ms)),
                val(":one", n(1)),
                val(":pending", state_name(&DeliveryState::Pending)),
            ],
        )
        .await
    }

    async fn delivery_succeeded(&self, id: AssessmentId, seq: u64) -> StoreResult<()> {
        self.update(
            "delivery_succeeded",
            delivery_key(id, seq),
            "SET #state = :delivered, #lease_until_ms = :zero \
             REMOVE #last_error, #gsi1pk, #gsi1sk",
            "attribute_exists(#pk)",
            vec![
                val(":delivered", state_name(&DeliveryState::Delivered)),
                val(":zero", n(0)),
            ],
        )
        .await?;
        Ok(())
    }

    async fn delivery_failed(
        &self,
        id: AssessmentId,
        seq: u64,
        error: &str,
        retry: &Retry,
    ) -> StoreResult<()> {
        let mut values = vec![
            val(":pending", state_name(&DeliveryState::Pending)),
            val(":zero", n(0)),
            val(":error", s(error)),
        ];
        let update = match retry {
            Retry::At(at) => {
                values.extend([
                    val(":at", n(*at)),
                    val(":due", s(DUE)),
                    val(":index_sk", s(index_sk(*at, id, seq))),
                ]);
                "SET #lease_until_ms = :zero, #last_error = :error, #next_attempt_ms = :at, \
                 #gsi1pk = :due, #gsi1sk = :index_sk"
            }
            Retry::Park(why) | Retry::Dead(why) => {
                // Stuck deliveries are listed by creation time, which only the item knows (and
                // never changes).
                let Some(item) = self.get("delivery_failed", delivery_key(id, seq)).await? else {
                    return Ok(());
                };
                let created_ms: Timestamp = Fields::new("delivery", &item).n("created_ms")?;
                let state = match retry {
                    Retry::Park(_) => DeliveryState::Parked(why.clone()),
                    _ => DeliveryState::Dead(why.clone()),
                };
                values.extend([
                    val(":stopped", state_name(&state)),
                    val(":reason", s(why)),
                    val(":stuck", s(STUCK)),
                    val(":index_sk", s(index_sk(created_ms, id, seq))),
                ]);
                "SET #lease_until_ms = :zero, #last_error = :error, #state = :stopped, \
                 #reason = :reason, #gsi1pk = :stuck, #gsi1sk = :index_sk"
            }
        };
        // Only a pending delivery: one settled meanwhile (by a vendor's answer) stays settled.
        self.update(
            "delivery_failed",
            delivery_key(id, seq),
            update,
            "attribute_exists(#pk) AND #state = :pending",
            values,
        )
        .await?;
        Ok(())
    }

    async fn due_deliveries(&self, now_ms: Timestamp, limit: usize) -> StoreResult<Vec<DueRef>> {
        // `~` sorts after every character of a uuid, so this bound takes in all of `now_ms`.
        let upto = format!("{:020}#~", now_ms.as_ms().max(0));
        self.index("due_deliveries", DUE, Some(upto), limit)
            .await?
            .iter()
            .map(|entry| {
                let (next_attempt_ms, assessment_id, seq) = decode_index_sk(entry)?;
                Ok(DueRef {
                    assessment_id,
                    seq,
                    next_attempt_ms: Timestamp::from_ms(next_attempt_ms),
                })
            })
            .collect()
    }
}

#[async_trait]
impl RegistryAdmin for DynamoDbStore {
    async fn put_tenant(&self, tenant: &Tenant, token: &TokenHash) -> StoreResult<()> {
        // Every write is conditional on what was read: of two concurrent replacements, the loser
        // re-reads and deletes the winner's token item instead of leaving it behind.
        for attempt in 0..MAX_ATTEMPTS {
            if self
                .write_tenant("put_tenant", tenant, token, true)
                .await?
                .is_some()
            {
                return Ok(());
            }
            backoff(attempt).await;
        }
        Err(contended("put_tenant"))
    }

    async fn create_tenant(
        &self,
        tenant: &Tenant,
        token: &TokenHash,
    ) -> StoreResult<RegistryOutcome> {
        for attempt in 0..MAX_ATTEMPTS {
            if let Some(outcome) = self
                .write_tenant("create_tenant", tenant, token, false)
                .await?
            {
                return Ok(outcome);
            }
            backoff(attempt).await;
        }
        Err(contended("create_tenant"))
    }

    async fn update_tenant(
        &self,
        id: &TenantId,
        change: &(dyn for<'t> Fn(&'t mut Tenant) + Send + Sync),
    ) -> StoreResult<Option<Tenant>> {
        for attempt in 0..MAX_ATTEMPTS {
            let Some(state) = self.tenant_state("update_tenant", id).await? else {
                return Ok(None);
            };
            let mut next = state.tenant;
            change(&mut next);
            next.id = id.clone();
            let (condition, mut values) = rev_condition(&state.rev);
            values.extend([
                val(":name", s(&next.name)),
                val(":url", s(next.ashby_base_url.as_str())),
                val(":packages", tenant_packages_value(&next.packages)),
                val(":disabled", AttributeValue::Bool(next.disabled)),
                val(":new_rev", new_rev()),
            ]);
            let written = self
                .update(
                    "update_tenant",
                    tenant_key(id),
                    "SET #name = :name, #ashby_base_url = :url, #packages = :packages, \
                     #disabled = :disabled, #rev = :new_rev",
                    condition,
                    values,
                )
                .await?;
            if written {
                return Ok(Some(next));
            }
            backoff(attempt).await;
        }
        Err(contended("update_tenant"))
    }

    async fn add_tenant_token(
        &self,
        tenant: &TenantId,
        token: &TokenHash,
    ) -> StoreResult<RegistryOutcome> {
        for attempt in 0..MAX_ATTEMPTS {
            let Some(state) = self.tenant_state("add_tenant_token", tenant).await? else {
                return Ok(RegistryOutcome::NotFound);
            };
            if state.tokens.iter().any(|t| t.hash == *token) {
                return Ok(RegistryOutcome::Done);
            }
            let owner = self.token_owner(token).await?;
            if owner.as_ref().is_some_and(|o| o != tenant) {
                return Ok(RegistryOutcome::TokenInUse);
            }
            if state.tokens.len() >= MAX_TENANT_TOKENS {
                return Ok(RegistryOutcome::TooManyTokens);
            }
            let mut tokens = state.tokens;
            tokens.push(TenantToken {
                hash: *token,
                added_at_ms: clock_ms(),
            });
            let ops = vec![
                self.tokens_op(tenant, &tokens, &state.rev)?,
                self.token_put_op(token, tenant, owner.as_ref())?,
            ];
            match self.transact("add_tenant_token", ops).await? {
                Tx::Committed => return Ok(RegistryOutcome::Done),
                Tx::ConditionFailed(_) | Tx::Contended => backoff(attempt).await,
            }
        }
        Err(contended("add_tenant_token"))
    }

    async fn revoke_tenant_token(
        &self,
        tenant: &TenantId,
        token: &TokenHash,
    ) -> StoreResult<RegistryOutcome> {
        for attempt in 0..MAX_ATTEMPTS {
            let Some(state) = self.tenant_state("revoke_tenant_token", tenant).await? else {
                return Ok(RegistryOutcome::NotFound);
            };
            if !state.tokens.iter().any(|t| t.hash == *token) {
                return Ok(RegistryOutcome::UnknownToken);
            }
            let rest: Vec<TenantToken> = state
                .tokens
                .into_iter()
                .filter(|t| t.hash != *token)
                .collect();
            let mut ops = vec![self.tokens_op(tenant, &rest, &state.rev)?];
            // A token item that points elsewhere is not ours to delete; unlisting the hash is
            // enough to stop it working for this tenant.
            if self.token_owner(token).await?.as_ref() == Some(tenant) {
                ops.push(self.delete_op(
                    token_key(token),
                    "#tenant_id = :me",
                    vec![val(":me", s(tenant.as_str()))],
                )?);
            }
            match self.transact("revoke_tenant_token", ops).await? {
                Tx::Committed => return Ok(RegistryOutcome::Done),
                Tx::ConditionFailed(_) | Tx::Contended => backoff(attempt).await,
            }
        }
        Err(contended("revoke_tenant_token"))
    }

    async fn tenant_tokens(&self, tenant: &TenantId) -> StoreResult<Vec<TenantToken>> {
        Ok(self
            .tenant_state("tenant_tokens", tenant)
            .await?
            .map(|s| s.tokens)
            .unwrap_or_default())
    }

    async fn list_tenants(&self) -> StoreResult<Vec<TenantEntry>> {
        let mut entries = self
            .scan_kind("list_tenants", "TENANT")
            .await?
            .iter()
            .map(|item| {
                let id = Fields::new("tenant", item)
                    .parse("pk", |pk| TenantId::parse(pk.strip_prefix("TENANT#")?).ok())?;
                Ok(TenantEntry {
                    tenant: decode_tenant(id, item)?,
                    tokens: decode_tokens(item)?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        entries.sort_by(|a, b| a.tenant.id.cmp(&b.tenant.id));
        Ok(entries)
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

    async fn create_vendor(&self, vendor: &Vendor) -> StoreResult<RegistryOutcome> {
        let created = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(vendor_item(vendor)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", "pk")
            .send()
            .await;
        match created {
            Ok(_) => Ok(RegistryOutcome::Done),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(RegistryOutcome::AlreadyExists)
            }
            Err(e) => Err(unavailable("create_vendor", &e)),
        }
    }

    async fn update_vendor(
        &self,
        id: &VendorId,
        change: &(dyn for<'v> Fn(&'v mut Vendor) + Send + Sync),
    ) -> StoreResult<Option<Vendor>> {
        for attempt in 0..MAX_ATTEMPTS {
            let Some(item) = self.get("update_vendor", vendor_key(id)).await? else {
                return Ok(None);
            };
            let mut next = decode_vendor(id.clone(), &item)?;
            change(&mut next);
            next.id = id.clone();
            let (condition, mut values) =
                rev_condition(&Fields::new("vendor", &item).opt_s("rev")?);
            values.extend([
                val(":name", s(&next.name)),
                val(":url", s(next.order_url.as_str())),
                val(":packages", vendor_packages_value(&next.packages)),
                val(":new_rev", new_rev()),
            ]);
            let written = self
                .update(
                    "update_vendor",
                    vendor_key(id),
                    "SET #name = :name, #order_url = :url, #packages = :packages, \
                     #rev = :new_rev",
                    condition,
                    values,
                )
                .await?;
            if written {
                return Ok(Some(next));
            }
            backoff(attempt).await;
        }
        Err(contended("update_vendor"))
    }

    async fn list_vendors(&self) -> StoreResult<Vec<Vendor>> {
        let mut vendors = self
            .scan_kind("list_vendors", "VENDOR")
            .await?
            .iter()
            .map(|item| {
                let id = Fields::new("vendor", item)
                    .parse("pk", |pk| VendorId::parse(pk.strip_prefix("VENDOR#")?).ok())?;
                decode_vendor(id, item)
            })
            .collect::<StoreResult<Vec<_>>>()?;
        vendors.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(vendors)
    }
}

#[async_trait]
impl QueueAdmin for DynamoDbStore {
    async fn deliveries(&self, id: AssessmentId) -> StoreResult<Vec<Delivery>> {
        self.deliveries_of("deliveries", id, true).await
    }

    async fn stuck_deliveries(&self, limit: usize) -> StoreResult<Vec<Delivery>> {
        let mut stuck = Vec::new();
        for entry in self.index("stuck_deliveries", STUCK, None, limit).await? {
            let (_, id, seq) = decode_index_sk(&entry)?;
            // The index lags: read the delivery itself, and skip it if it moved on meanwhile.
            let Some(item) = self.get("stuck_deliveries", delivery_key(id, seq)).await? else {
                continue;
            };
            let d = decode_delivery(&item)?;
            if matches!(d.state, DeliveryState::Parked(_) | DeliveryState::Dead(_)) {
                stuck.push(d);
            }
        }
        Ok(stuck)
    }

    async fn redeliver(&self, id: AssessmentId, seq: u64, now_ms: Timestamp) -> StoreResult<bool> {
        self.update(
            "redeliver",
            delivery_key(id, seq),
            "SET #state = :pending, #next_attempt_ms = :now, #lease_until_ms = :zero, \
             #created_ms = :now, #attempts = :zero, #gsi1pk = :due, #gsi1sk = :index_sk \
             REMOVE #reason",
            "attribute_exists(#pk) AND #state IN (:parked, :dead)",
            vec![
                val(":pending", state_name(&DeliveryState::Pending)),
                val(":now", n(now_ms)),
                val(":zero", n(0)),
                val(":due", s(DUE)),
                val(":index_sk", s(index_sk(now_ms, id, seq))),
                val(":parked", state_name(&DeliveryState::Parked(String::new()))),
                val(":dead", state_name(&DeliveryState::Dead(String::new()))),
            ],
        )
        .await
    }
}

// --- the table ---

fn string_attribute(name: &str) -> StoreResult<AttributeDefinition> {
    built(
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build(),
    )
}

fn key_element(name: &str, key_type: KeyType) -> StoreResult<KeySchemaElement> {
    built(
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build(),
    )
}

fn due_index_attributes() -> StoreResult<Vec<AttributeDefinition>> {
    Ok(vec![
        string_attribute("gsi1pk")?,
        string_attribute("gsi1sk")?,
    ])
}

fn due_index_keys() -> StoreResult<Vec<KeySchemaElement>> {
    Ok(vec![
        key_element("gsi1pk", KeyType::Hash)?,
        key_element("gsi1sk", KeyType::Range)?,
    ])
}

/// The index holds keys only: a due entry's sort key says all the scheduler needs.
fn keys_only() -> Projection {
    Projection::builder()
        .projection_type(ProjectionType::KeysOnly)
        .build()
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

/// Zero-padded so that the string order of sort keys is the numeric order of sequence numbers.
fn delivery_key(id: AssessmentId, seq: u64) -> Item {
    key(assessment_pk(id), &format!("{DELIVERY_PREFIX}{seq:020}"))
}

/// A delivery's sort key in the `due` index: `<time>#<assessment uuid>#<seq>`, time and seq
/// zero-padded, so that entries sort by time (the next attempt under `DUE`, the creation under
/// `STUCK`) and each one names its delivery.
fn index_sk(at_ms: Timestamp, id: AssessmentId, seq: u64) -> String {
    format!("{:020}#{id}#{seq:020}", at_ms.as_ms().max(0))
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

fn tenant_item(t: &Tenant, tokens: &[TenantToken]) -> Item {
    item(
        tenant_key(&t.id),
        [
            ("name", s(&t.name)),
            ("ashby_base_url", s(t.ashby_base_url.as_str())),
            ("packages", tenant_packages_value(&t.packages)),
            ("disabled", AttributeValue::Bool(t.disabled)),
            ("tokens", tokens_value(tokens)),
            ("rev", new_rev()),
        ],
    )
}

fn tenant_packages_value(packages: &[PackageRef]) -> AttributeValue {
    AttributeValue::L(packages.iter().map(|p| s(p.to_string())).collect())
}

/// A tenant's tokens as a map from hash to when it was added.
fn tokens_value(tokens: &[TenantToken]) -> AttributeValue {
    AttributeValue::M(
        tokens
            .iter()
            .map(|t| (t.hash.to_hex(), n(t.added_at_ms)))
            .collect(),
    )
}

fn token_item(token: &TokenHash, tenant: &TenantId) -> Item {
    item(token_key(token), [("tenant_id", s(tenant.as_str()))])
}

fn vendor_item(v: &Vendor) -> Item {
    item(
        vendor_key(&v.id),
        [
            ("name", s(&v.name)),
            ("order_url", s(v.order_url.as_str())),
            ("packages", vendor_packages_value(&v.packages)),
            ("rev", new_rev()),
        ],
    )
}

fn vendor_packages_value(packages: &[Package]) -> AttributeValue {
    AttributeValue::L(
        packages
            .iter()
            .map(|p| {
                AttributeValue::M(HashMap::from([
                    ("id".to_owned(), s(p.id.as_str())),
                    ("name".to_owned(), s(&p.name)),
                    ("description".to_owned(), s(&p.description)),
                ]))
            })
            .collect(),
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
            ("version", n(a.version)),
        ],
    );
    put_opt(&mut i, "status_label", a.status_label.as_deref());
    put_opt(&mut i, "vendor_reference", a.vendor_reference.as_deref());
    put_opt(&mut i, "rejection_message", a.rejection_message.as_deref());
    i
}

/// A delivery state as stored (`pending`, `delivered`, `parked`, `dead`); a reason is apart.
fn state_name(state: &DeliveryState) -> AttributeValue {
    s(state.name())
}

/// A new pending delivery, in the `due` index from the start.
fn delivery_item(id: AssessmentId, seq: u64, d: &NewDelivery, created_ms: Timestamp) -> Item {
    let mut i = item(
        delivery_key(id, seq),
        [
            ("kind", s(d.kind.as_str())),
            ("body", s(&d.body)),
            ("state", state_name(&DeliveryState::Pending)),
            ("attempts", n(0)),
            ("created_ms", n(created_ms)),
            ("next_attempt_ms", n(d.next_attempt_ms)),
            ("lease_until_ms", n(d.leased_until_ms)),
            ("gsi1pk", s(DUE)),
            ("gsi1sk", s(index_sk(d.next_attempt_ms, id, seq))),
        ],
    );
    if let Some(at) = d.expires_at_s {
        // A vendor order carries candidate PII: TTL deletes it after the retention period.
        i.insert("expires_at".to_owned(), n(at));
    }
    i
}

/// The assessment update of a change (conditional on `:expected`), `last_seq` being the new
/// `update_seq`; with its values.
fn change_update(c: &Change, last_seq: u64) -> (String, Vec<(String, AttributeValue)>) {
    let mut set = vec!["#status = :status", "#update_seq = :seq", BUMP];
    let mut values = vec![
        val(":expected", n(c.expected_version)),
        val(":expected_seq", n(c.expected_update_seq)),
        val(":status", s(c.status.as_str())),
        val(":seq", n(last_seq)),
        val(":now", n(c.now_ms)),
        val(":one", n(1)),
    ];
    if let Some(label) = &c.status_label {
        set.push("#status_label = :label");
        values.push(val(":label", s(label)));
    }
    if let Some(message) = &c.rejection_message {
        set.push("#rejection_message = :rejection");
        values.push(val(":rejection", s(message)));
    }
    if let Some(reference) = &c.vendor_reference {
        set.push("#vendor_reference = :reference");
        values.push(val(":reference", s(reference)));
    }
    if let Some(ts) = c.update_ms {
        set.push("#last_update_ms = :update_ms");
        values.push(val(":update_ms", n(ts)));
    }
    let remove = if c.status_label.is_none() {
        " REMOVE #status_label"
    } else {
        ""
    };
    (format!("SET {}{remove}", set.join(", ")), values)
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

/// A tenant's tokens, oldest first (ties by hash, so that the order is stable).
fn decode_tokens(item: &Item) -> StoreResult<Vec<TenantToken>> {
    let f = Fields::new("tenant", item);
    let mut tokens = match item.get("tokens") {
        Some(AttributeValue::M(m)) => m
            .iter()
            .map(|(hash, added)| {
                let hash = TokenHash::from_hex(hash).ok_or_else(|| f.corrupt("tokens"))?;
                let added_at_ms = match added {
                    AttributeValue::N(v) => v.parse().map_err(|_| f.corrupt("tokens"))?,
                    _ => return Err(f.corrupt("tokens")),
                };
                Ok(TenantToken { hash, added_at_ms })
            })
            .collect::<StoreResult<Vec<_>>>()?,
        // Written before a tenant could hold several tokens: its one token, added at an unknown
        // time. The next token change rewrites it in the new shape.
        None => vec![TenantToken {
            hash: f.parse("token_hash", TokenHash::from_hex)?,
            added_at_ms: Timestamp::EPOCH,
        }],
        Some(_) => return Err(f.corrupt("tokens")),
    };
    tokens.sort_by_key(|t| (t.added_at_ms, t.hash.to_hex()));
    Ok(tokens)
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
        version: f.n("version")?,
    })
}

fn decode_delivery(item: &Item) -> StoreResult<Delivery> {
    let f = Fields::new("delivery", item);
    let state = match f.s("state")? {
        "pending" => DeliveryState::Pending,
        "delivered" => DeliveryState::Delivered,
        "parked" => DeliveryState::Parked(f.s("reason")?.to_owned()),
        "dead" => DeliveryState::Dead(f.s("reason")?.to_owned()),
        _ => return Err(f.corrupt("state")),
    };
    Ok(Delivery {
        assessment_id: f.parse("pk", |v| {
            parse_assessment_id(v.strip_prefix("ASSESSMENT#")?)
        })?,
        seq: f.parse("sk", |v| v.strip_prefix(DELIVERY_PREFIX)?.parse().ok())?,
        kind: f.parse("kind", DeliveryKind::parse)?,
        body: f.s("body")?.to_owned(),
        state,
        attempts: f.n("attempts")?,
        created_ms: f.n("created_ms")?,
        next_attempt_ms: f.n("next_attempt_ms")?,
        lease_until_ms: f.n("lease_until_ms")?,
        last_error: f.opt_s("last_error")?,
    })
}

/// The time, assessment and sequence number a `due` index entry's sort key names.
fn decode_index_sk(entry: &Item) -> StoreResult<(i64, AssessmentId, u64)> {
    Fields::new("due index", entry).parse("gsi1sk", |v| {
        let mut parts = v.split('#');
        let at = parts.next()?.parse().ok()?;
        let id = parse_assessment_id(parts.next()?)?;
        let seq = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some((at, id, seq))
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
            created_at_ms: Timestamp::from_ms(1),
            updated_at_ms: Timestamp::from_ms(2),
            last_update_ms: Timestamp::from_ms(3),
            update_seq: 4,
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
        let tokens = [
            TenantToken {
                hash: TokenHash::of(&secrecy::SecretString::from("tok")),
                added_at_ms: Timestamp::from_ms(1),
            },
            TenantToken {
                hash: TokenHash::of(&secrecy::SecretString::from("tok2")),
                added_at_ms: Timestamp::from_ms(2),
            },
        ];
        let item = tenant_item(&tenant, &tokens);
        assert_eq!(decode_tenant(tenant.id.clone(), &item), Ok(tenant));
        assert_eq!(decode_tokens(&item), Ok(tokens.to_vec()));
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
    fn delivery_sort_keys_sort_numerically() {
        let id = AssessmentId::new();
        let sk = |seq| match delivery_key(id, seq).remove("sk") {
            Some(AttributeValue::S(v)) => v,
            _ => panic!("sk is a string"),
        };
        assert!(sk(9) < sk(10));
        assert!(sk(99) < sk(100));
        assert!(sk(u64::MAX - 1) < sk(u64::MAX));
    }

    #[test]
    fn a_delivery_round_trips_through_its_item_in_every_state() {
        let id = AssessmentId::new();
        let new = NewDelivery {
            kind: DeliveryKind::VendorOrder,
            body: r#"{"candidate":{}}"#.into(),
            next_attempt_ms: Timestamp::from_ms(20),
            leased_until_ms: Timestamp::from_ms(30),
            expires_at_s: Some(40),
        };
        let mut item = delivery_item(id, 7, &new, Timestamp::from_ms(10));
        assert_eq!(item.get("expires_at"), Some(&n(40)));
        let mut want = Delivery {
            assessment_id: id,
            seq: 7,
            kind: DeliveryKind::VendorOrder,
            body: new.body.clone(),
            state: DeliveryState::Pending,
            attempts: 0,
            created_ms: Timestamp::from_ms(10),
            next_attempt_ms: Timestamp::from_ms(20),
            lease_until_ms: Timestamp::from_ms(30),
            last_error: None,
        };
        assert_eq!(decode_delivery(&item), Ok(want.clone()));
        item.insert("last_error".into(), s("HTTP 503"));
        want.last_error = Some("HTTP 503".into());
        for state in [
            DeliveryState::Delivered,
            DeliveryState::Parked("no key".into()),
            DeliveryState::Dead("too old".into()),
        ] {
            item.insert("state".into(), state_name(&state));
            if let Some(reason) = state.reason() {
                item.insert("reason".into(), s(reason));
            }
            want.state = state;
            assert_eq!(decode_delivery(&item), Ok(want.clone()));
        }
        item.remove("reason");
        assert_eq!(
            decode_delivery(&item),
            Err(StoreError::Corrupt("delivery attribute reason".into()))
        );
    }

    #[test]
    fn due_index_sort_keys_sort_by_time_and_name_their_delivery() {
        let (a, b) = (AssessmentId::new(), AssessmentId::new());
        assert!(index_sk(Timestamp::from_ms(9), b, 1) < index_sk(Timestamp::from_ms(10), a, 1));
        assert!(index_sk(Timestamp::from_ms(10), a, 1) < format!("{:020}#~", 10));
        assert!(index_sk(Timestamp::from_ms(11), a, 1) > format!("{:020}#~", 10));
        let entry = HashMap::from([(
            "gsi1sk".to_owned(),
            s(index_sk(Timestamp::from_ms(1_700), a, 12)),
        )]);
        assert_eq!(decode_index_sk(&entry), Ok((1_700, a, 12)));
        let bad = HashMap::from([(
            "gsi1sk".to_owned(),
            s(format!("{}#x", index_sk(Timestamp::from_ms(1), a, 1))),
        )]);
        assert_eq!(
            decode_index_sk(&bad),
            Err(StoreError::Corrupt("due index attribute gsi1sk".into()))
        );
    }

    #[test]
    fn a_change_sets_only_what_it_carries() {
        let mut c = Change {
            expected_version: 3,
            expected_update_seq: 1,
            status: Status::Completed,
            status_label: None,
            rejection_message: None,
            vendor_reference: None,
            now_ms: Timestamp::from_ms(5),
            deliveries: vec![],
            update_ms: None,
        };
        let (update, _) = change_update(&c, 2);
        assert_eq!(
            update,
            format!("SET #status = :status, #update_seq = :seq, {BUMP} REMOVE #status_label")
        );
        c.status_label = Some("Done".into());
        c.vendor_reference = Some("ACME-1".into());
        c.update_ms = Some(Timestamp::from_ms(6));
        let (update, values) = change_update(&c, 2);
        assert!(!update.contains("REMOVE") && !update.contains("#rejection_message"));
        for set in ["#status_label = :label", "#vendor_reference = :reference"] {
            assert!(update.contains(set), "{update}");
        }
        assert!(values.contains(&val(":update_ms", n(6))));
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
