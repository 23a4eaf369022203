//! The stored items, one struct per kind whose fields are the item's attributes (same names, same
//! DynamoDB types), mapped by `serde_dynamo`, and their conversion to and from the domain records.
//! An optional attribute is absent when `None`, never NULL (NULL is read as absent), so that
//! `REMOVE` and "never set" look the same. A decoding error names the kind and the attribute,
//! never the value: delivery items carry candidate PII.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

use super::keys::{self, Item};
use crate::clock::Timestamp;
use crate::domain::{
    Assessment, AssessmentId, AssessmentTypeId, Ats, AtsCall, Delivery, DeliveryHealth,
    DeliveryKind, DeliveryReport, DeliveryState, Invite, KeyCheck, NewDelivery, Package, PackageId,
    PackageOption, PackageRef, Status, Summary, Tenant, TenantHealth, TenantId, TokenHash, Vendor,
    VendorId,
};

/// The ATS attribute: absent for Ashby (every item written before there was a choice).
fn is_ashby(a: &Ats) -> bool {
    *a == Ats::Ashby
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A summary as its attribute: JSON text (its metadata values are of mixed types).
pub(super) fn summary_text(s: &Summary) -> StoreResult<String> {
    serde_json::to_string(s).map_err(|_| corrupt("assessment", "summary"))
}
use crate::ports::{StartKey, StoreError, StoreResult, TenantToken};

/// `TENANT#<id>` / `TENANT`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct TenantItem {
    pk: String,
    sk: String,
    name: String,
    #[serde(default, skip_serializing_if = "is_ashby")]
    ats: Ats,
    ashby_base_url: Url,
    packages: Vec<PackageRef>,
    disabled: bool,
    /// Token hash (hex) → when it was added. Absent only on items written before a tenant could
    /// hold several tokens, which have `token_hash` instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens: Option<HashMap<String, Timestamp>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_hash: Option<String>,
    /// Renewed by every write, for optimistic concurrency; absent on items written before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    rev: Option<String>,
    /// Set only by `record_tenant_ats_error` (an update of these two attributes), never by an
    /// encode: absent until the ATS reports something.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ats_errors: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_ats_error: Option<String>,
    /// The tenant's health (`TenantHealth`): set only by the functions' `record_*` updates and
    /// the connect page's writes, never by an encode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_call_ms: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_call_route: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_checked_ms: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_scopes_verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delivery_ms: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delivery_outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delivery_detail: Option<String>,
}

/// `CONNECT#<hash of the code>` / `CONNECT`: one connect link. Expires (TTL) 30 days after the
/// link does, so that operators still see a recently expired link.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct InviteItem {
    pk: String,
    sk: String,
    tenant_id: TenantId,
    created_at_ms: Timestamp,
    link_expires_at_ms: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_at_ms: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_shown_at_ms: Option<Timestamp>,
    expires_at: i64,
}

/// How long a link's item outlives the link.
const INVITE_KEPT_S: i64 = 30 * 24 * 3600;

impl InviteItem {
    pub fn encode(i: &Invite) -> StoreResult<Item> {
        let keys::Key { pk, sk } = keys::invite(&i.hash);
        encode(
            "invite",
            &Self {
                pk,
                sk,
                tenant_id: i.tenant_id.clone(),
                created_at_ms: i.created_at_ms,
                link_expires_at_ms: i.expires_at_ms,
                revoked_at_ms: i.revoked_at_ms,
                token_shown_at_ms: i.token_shown_at_ms,
                expires_at: i.expires_at_ms.as_secs().saturating_add(INVITE_KEPT_S),
            },
        )
    }

    pub fn decode(item: Item) -> StoreResult<Invite> {
        let i: Self = decode("invite", item)?;
        Ok(Invite {
            hash: keys::invite_of(&i.pk).ok_or_else(|| corrupt("invite", "pk"))?,
            tenant_id: i.tenant_id,
            created_at_ms: i.created_at_ms,
            expires_at_ms: i.link_expires_at_ms,
            revoked_at_ms: i.revoked_at_ms,
            token_shown_at_ms: i.token_shown_at_ms,
        })
    }
}

/// A tenant item as read, with the revision a conditional write of it must still find.
#[derive(Debug)]
pub(super) struct StoredTenant {
    pub tenant: Tenant,
    pub rev: Option<String>,
    tokens: Option<HashMap<String, Timestamp>>,
    token_hash: Option<String>,
    pub ats_errors: u32,
    pub last_ats_error: Option<String>,
    pub health: TenantHealth,
}

impl StoredTenant {
    /// The tenant's tokens, oldest first (ties by hash, so that the order is stable). Decoded
    /// apart from the tenant, so that reading a tenant does not depend on them.
    pub fn tokens(&self) -> StoreResult<Vec<TenantToken>> {
        const KIND: &str = "tenant";
        let mut tokens = match (&self.tokens, &self.token_hash) {
            (Some(map), _) => map
                .iter()
                .map(|(hash, added_at_ms)| {
                    let hash = TokenHash::from_hex(hash).ok_or_else(|| corrupt(KIND, "tokens"))?;
                    Ok(TenantToken {
                        hash,
                        added_at_ms: *added_at_ms,
                    })
                })
                .collect::<StoreResult<Vec<_>>>()?,
            // Written before a tenant could hold several tokens: its one token, added at an
            // unknown time. The next token change rewrites it in the new shape.
            (None, Some(hash)) => vec![TenantToken {
                hash: TokenHash::from_hex(hash).ok_or_else(|| corrupt(KIND, "token_hash"))?,
                added_at_ms: Timestamp::EPOCH,
            }],
            (None, None) => return Err(corrupt(KIND, "token_hash")),
        };
        tokens.sort_by_key(|t| (t.added_at_ms, t.hash.to_hex()));
        Ok(tokens)
    }
}

impl TenantItem {
    pub fn encode(tenant: &Tenant, tokens: &[TenantToken], rev: String) -> StoreResult<Item> {
        let keys::Key { pk, sk } = keys::tenant(&tenant.id);
        encode(
            "tenant",
            &Self {
                pk,
                sk,
                name: tenant.name.clone(),
                ats: tenant.ats,
                ashby_base_url: tenant.ashby_base_url.clone(),
                packages: tenant.packages.clone(),
                disabled: tenant.disabled,
                tokens: Some(tokens_map(tokens)),
                token_hash: None,
                rev: Some(rev),
                ats_errors: None,
                last_ats_error: None,
                last_call_ms: None,
                last_call_route: None,
                pending_token: None,
                key_checked_ms: None,
                key_label: None,
                key_scopes_verified: None,
                delivery_ms: None,
                delivery_outcome: None,
                delivery_detail: None,
            },
        )
    }

    pub fn decode(item: Item) -> StoreResult<StoredTenant> {
        let i: Self = decode("tenant", item)?;
        let id = keys::tenant_of(&i.pk).ok_or_else(|| corrupt("tenant", "pk"))?;
        let health = TenantHealth {
            last_call: i.last_call_ms.map(|at_ms| AtsCall {
                at_ms,
                route: i.last_call_route.unwrap_or_default(),
            }),
            key: match (i.key_checked_ms, i.key_label) {
                (Some(at_ms), Some(label)) => Some(KeyCheck {
                    at_ms,
                    label,
                    scopes_verified: i.key_scopes_verified.unwrap_or(false),
                }),
                _ => None,
            },
            last_delivery: match (i.delivery_ms, i.delivery_outcome) {
                (Some(at_ms), Some(o)) => Some(DeliveryReport {
                    at_ms,
                    outcome: DeliveryHealth::parse(&o)
                        .ok_or_else(|| corrupt("tenant", "delivery_outcome"))?,
                    detail: i.delivery_detail.unwrap_or_default(),
                }),
                _ => None,
            },
            pending_token: i
                .pending_token
                .map(|h| TokenHash::from_hex(&h).ok_or_else(|| corrupt("tenant", "pending_token")))
                .transpose()?,
        };
        Ok(StoredTenant {
            health,
            tenant: Tenant {
                id,
                name: i.name,
                ats: i.ats,
                ashby_base_url: i.ashby_base_url,
                packages: i.packages,
                disabled: i.disabled,
            },
            rev: i.rev,
            tokens: i.tokens,
            token_hash: i.token_hash,
            ats_errors: i.ats_errors.unwrap_or(0),
            last_ats_error: i.last_ats_error,
        })
    }
}

/// A tenant's `tokens` attribute: a map from hash to when it was added.
pub(super) fn tokens_value(tokens: &[TenantToken]) -> StoreResult<AttributeValue> {
    encode_value("tenant", &tokens_map(tokens))
}

fn tokens_map(tokens: &[TenantToken]) -> HashMap<String, Timestamp> {
    tokens
        .iter()
        .map(|t| (t.hash.to_hex(), t.added_at_ms))
        .collect()
}

/// `TOKEN#<sha256 hex>` / `TOKEN`: which tenant a token hash belongs to.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct TokenItem {
    pk: String,
    sk: String,
    tenant_id: TenantId,
}

impl TokenItem {
    pub fn encode(token: &TokenHash, tenant: &TenantId) -> StoreResult<Item> {
        let keys::Key { pk, sk } = keys::token(token);
        encode(
            "token",
            &Self {
                pk,
                sk,
                tenant_id: tenant.clone(),
            },
        )
    }

    /// The tenant the token item points at.
    pub fn decode(item: Item) -> StoreResult<TenantId> {
        Ok(decode::<Self>("token", item)?.tenant_id)
    }
}

/// `VENDOR#<id>` / `VENDOR`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct VendorItem {
    pk: String,
    sk: String,
    name: String,
    order_url: Url,
    packages: Vec<PackageItem>,
    /// As a tenant's.
    #[serde(skip_serializing_if = "Option::is_none")]
    rev: Option<String>,
}

/// One entry of a vendor's `packages` list (a map).
#[derive(Debug, Serialize, Deserialize)]
struct PackageItem {
    id: PackageId,
    name: String,
    /// Always written (empty when there is none); read as empty when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    /// Absent when the package declares none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    options: Vec<PackageOption>,
}

impl VendorItem {
    pub fn encode(vendor: &Vendor, rev: String) -> StoreResult<Item> {
        let keys::Key { pk, sk } = keys::vendor(&vendor.id);
        encode(
            "vendor",
            &Self {
                pk,
                sk,
                name: vendor.name.clone(),
                order_url: vendor.order_url.clone(),
                packages: vendor
                    .packages
                    .iter()
                    .map(|p| PackageItem {
                        id: p.id.clone(),
                        name: p.name.clone(),
                        description: Some(p.description.clone()),
                        options: p.options.clone(),
                    })
                    .collect(),
                rev: Some(rev),
            },
        )
    }

    /// The vendor and the `rev` it was read with.
    pub fn decode(item: Item) -> StoreResult<(Vendor, Option<String>)> {
        let i: Self = decode("vendor", item)?;
        let id = keys::vendor_of(&i.pk).ok_or_else(|| corrupt("vendor", "pk"))?;
        let vendor = Vendor {
            id,
            name: i.name,
            order_url: i.order_url,
            packages: i
                .packages
                .into_iter()
                .map(|p| Package {
                    id: p.id,
                    name: p.name,
                    description: p.description.unwrap_or_default(),
                    options: p.options,
                })
                .collect(),
        };
        Ok((vendor, i.rev))
    }
}

/// `ASSESSMENT#<uuid>` / `ASSESSMENT`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct AssessmentItem {
    pk: String,
    sk: String,
    id: AssessmentId,
    tenant_id: TenantId,
    vendor_id: VendorId,
    package_id: PackageId,
    assessment_type_id: AssessmentTypeId,
    application_id: String,
    /// Absent on assessments recorded before the hub kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    candidate_id: Option<String>,
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vendor_reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rejection_message: Option<String>,
    created_at_ms: Timestamp,
    updated_at_ms: Timestamp,
    last_update_ms: Timestamp,
    update_seq: u64,
    version: u64,
    #[serde(default, skip_serializing_if = "is_ashby")]
    ats: Ats,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ats_url: Option<String>,
    /// JSON text of a `Summary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    ats_errors: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_ats_error: Option<String>,
}

impl AssessmentItem {
    pub fn encode(a: &Assessment) -> StoreResult<Item> {
        let keys::Key { pk, sk } = keys::assessment(a.id);
        encode(
            "assessment",
            &Self {
                pk,
                sk,
                id: a.id,
                tenant_id: a.tenant_id.clone(),
                vendor_id: a.vendor_id.clone(),
                package_id: a.package_id.clone(),
                assessment_type_id: a.assessment_type_id,
                application_id: a.application_id.clone(),
                candidate_id: a.candidate_id.clone(),
                status: a.status,
                status_label: a.status_label.clone(),
                vendor_reference: a.vendor_reference.clone(),
                rejection_message: a.rejection_message.clone(),
                created_at_ms: a.created_at_ms,
                updated_at_ms: a.updated_at_ms,
                last_update_ms: a.last_update_ms,
                update_seq: a.update_seq,
                version: a.version,
                ats: a.ats,
                ats_url: a.ats_url.clone(),
                summary: a.summary.as_ref().map(summary_text).transpose()?,
                ats_errors: a.ats_errors,
                last_ats_error: a.last_ats_error.clone(),
            },
        )
    }

    pub fn decode(item: Item) -> StoreResult<Assessment> {
        let i: Self = decode("assessment", item)?;
        Ok(Assessment {
            id: i.id,
            tenant_id: i.tenant_id,
            vendor_id: i.vendor_id,
            package_id: i.package_id,
            assessment_type_id: i.assessment_type_id,
            application_id: i.application_id,
            candidate_id: i.candidate_id,
            status: i.status,
            status_label: i.status_label,
            vendor_reference: i.vendor_reference,
            rejection_message: i.rejection_message,
            created_at_ms: i.created_at_ms,
            updated_at_ms: i.updated_at_ms,
            last_update_ms: i.last_update_ms,
            update_seq: i.update_seq,
            version: i.version,
            ats: i.ats,
            ats_url: i.ats_url,
            summary: i
                .summary
                .map(|t| serde_json::from_str(&t).map_err(|_| corrupt("assessment", "summary")))
                .transpose()?,
            ats_errors: i.ats_errors,
            last_ats_error: i.last_ats_error,
        })
    }
}

/// `ASSESSMENT#<uuid>` / `DELIVERY#<seq>`: one delivery of the queue. No `Debug`: a vendor
/// order's `body` carries candidate PII.
#[derive(Serialize, Deserialize)]
pub(super) struct DeliveryItem {
    pk: String,
    sk: String,
    /// `DeliveryKind::as_str`.
    kind: String,
    body: String,
    /// `DeliveryState::name`; a parked or dead one's reason is in `reason`.
    state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    attempts: u32,
    created_ms: Timestamp,
    next_attempt_ms: Timestamp,
    lease_until_ms: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    /// The `due` index's keys: present while the delivery is pending, parked or dead.
    #[serde(skip_serializing_if = "Option::is_none")]
    gsi1pk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gsi1sk: Option<String>,
    /// The TTL (Unix seconds): a vendor order carries candidate PII and is deleted after the
    /// retention period.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

impl DeliveryItem {
    /// A new pending delivery, in the `due` index from the start.
    pub fn encode(
        id: AssessmentId,
        seq: u64,
        d: &NewDelivery,
        created_ms: Timestamp,
    ) -> StoreResult<Item> {
        let keys::Key { pk, sk } = keys::delivery(id, seq);
        encode(
            "delivery",
            &Self {
                pk,
                sk,
                kind: d.kind.as_str().to_owned(),
                body: d.body.clone(),
                state: DeliveryState::Pending.name().to_owned(),
                reason: None,
                attempts: 0,
                created_ms,
                next_attempt_ms: d.next_attempt_ms,
                lease_until_ms: d.leased_until_ms,
                last_error: None,
                gsi1pk: Some(keys::DUE.to_owned()),
                gsi1sk: Some(keys::index_sk(d.next_attempt_ms, id, seq)),
                expires_at: d.expires_at_s,
            },
        )
    }

    pub fn decode(item: Item) -> StoreResult<Delivery> {
        const KIND: &str = "delivery";
        let i: Self = decode(KIND, item)?;
        let reason = || i.reason.clone().ok_or_else(|| corrupt(KIND, "reason"));
        let state = match i.state.as_str() {
            "pending" => DeliveryState::Pending,
            "delivered" => DeliveryState::Delivered,
            "parked" => DeliveryState::Parked(reason()?),
            "dead" => DeliveryState::Dead(reason()?),
            _ => return Err(corrupt(KIND, "state")),
        };
        Ok(Delivery {
            assessment_id: keys::assessment_of(&i.pk).ok_or_else(|| corrupt(KIND, "pk"))?,
            seq: keys::seq_of(&i.sk).ok_or_else(|| corrupt(KIND, "sk"))?,
            kind: DeliveryKind::parse(&i.kind).ok_or_else(|| corrupt(KIND, "kind"))?,
            body: i.body,
            state,
            attempts: i.attempts,
            created_ms: i.created_ms,
            next_attempt_ms: i.next_attempt_ms,
            lease_until_ms: i.lease_until_ms,
            last_error: i.last_error,
        })
    }
}

/// Only a delivery's `created_ms`, which a parked or dead delivery is listed by.
#[derive(Debug, Deserialize)]
struct DeliveryCreated {
    created_ms: Timestamp,
}

impl DeliveryItem {
    /// A delivery's creation time, without decoding the rest of it.
    pub fn created_ms(item: Item) -> StoreResult<Timestamp> {
        Ok(decode::<DeliveryCreated>("delivery", item)?.created_ms)
    }
}

/// A delivery state's attribute value (`pending`, `delivered`, `parked`, `dead`); the reason is
/// apart, in `reason`.
pub(super) fn state_value(state: &DeliveryState) -> AttributeValue {
    AttributeValue::S(state.name().to_owned())
}

/// `START#<tenant>#<type>#<sha256 hex of application id>` / `START`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct StartKeyItem {
    pk: String,
    sk: String,
    assessment_id: AssessmentId,
}

impl StartKeyItem {
    pub fn encode(key: &StartKey, owner: AssessmentId) -> StoreResult<Item> {
        let keys::Key { pk, sk } = keys::start(key);
        encode(
            "start key",
            &Self {
                pk,
                sk,
                assessment_id: owner,
            },
        )
    }

    /// The assessment the start key points at.
    pub fn decode(item: Item) -> StoreResult<AssessmentId> {
        Ok(decode::<Self>("start key", item)?.assessment_id)
    }
}

/// `WEBHOOK#<vendor>#<webhook id>` / `WEBHOOK`: a processed callback, until `expires_at`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct WebhookItem {
    pk: String,
    sk: String,
    expires_at: i64,
}

impl WebhookItem {
    pub fn encode(vendor: &VendorId, webhook_id: &str, expires_at_s: i64) -> StoreResult<Item> {
        let keys::Key { pk, sk } = keys::webhook(vendor, webhook_id);
        encode(
            "webhook",
            &Self {
                pk,
                sk,
                expires_at: expires_at_s,
            },
        )
    }
}

/// An entry of the `due` index (keys only): the table's keys and the index's.
#[derive(Debug, Deserialize)]
pub(super) struct IndexEntry {
    gsi1sk: String,
}

impl IndexEntry {
    /// The time, assessment and sequence number the entry's sort key names.
    pub fn decode(item: Item) -> StoreResult<(Timestamp, AssessmentId, u64)> {
        const KIND: &str = "due index";
        let i: Self = decode(KIND, item)?;
        keys::parse_index_sk(&i.gsi1sk).ok_or_else(|| corrupt(KIND, "gsi1sk"))
    }
}

// --- the mapping ---

fn corrupt(kind: &str, attribute: &str) -> StoreError {
    StoreError::Corrupt(format!("{kind} attribute {attribute}"))
}

/// Encodes an item struct. It cannot fail for the structs above (every map key is a string); a
/// failure would be a bug, reported without the item.
fn encode<T: Serialize>(kind: &str, item: &T) -> StoreResult<Item> {
    serde_dynamo::to_item(item)
        .map_err(|_| StoreError::Unavailable(format!("could not encode a {kind} item")))
}

fn encode_value<T: Serialize>(kind: &str, value: &T) -> StoreResult<AttributeValue> {
    serde_dynamo::to_attribute_value(value)
        .map_err(|_| StoreError::Unavailable(format!("could not encode a {kind} attribute")))
}

/// Decodes an item of `kind`. A missing or mistyped attribute is `Corrupt`, named by the
/// attribute it is in; serde's message is dropped, since it can quote the value.
fn decode<T: DeserializeOwned>(kind: &str, item: Item) -> StoreResult<T> {
    // serde_dynamo panics on a type the SDK did not know (`Unknown`): refuse it first.
    if let Some(name) = item
        .iter()
        .find_map(|(name, v)| has_unknown(v).then_some(name))
    {
        return Err(corrupt(kind, name));
    }
    let value = serde_dynamo::AttributeValue::M(serde_dynamo::Item::from(item).into());
    serde_path_to_error::deserialize(serde_dynamo::Deserializer::from_attribute_value(value))
        .map_err(|e| match attribute_of(&e) {
            Some(name) => corrupt(kind, &name),
            None => StoreError::Corrupt(format!("{kind} item")),
        })
}

fn has_unknown(v: &AttributeValue) -> bool {
    match v {
        AttributeValue::L(l) => l.iter().any(has_unknown),
        AttributeValue::M(m) => m.values().any(has_unknown),
        v => v.is_unknown(),
    }
}

/// The top-level attribute an error is in. A missing attribute is reported by the item's struct
/// itself, at the top, as serde's `missing field `<name>``: the name is one of ours.
fn attribute_of(e: &serde_path_to_error::Error<serde_dynamo::Error>) -> Option<String> {
    match e.path().iter().next() {
        Some(serde_path_to_error::Segment::Map { key }) => Some(key.clone()),
        Some(_) => None,
        None => e
            .inner()
            .to_string()
            .strip_prefix("missing field `")?
            .strip_suffix('`')
            .map(str::to_owned),
    }
}
