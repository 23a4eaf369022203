//! Tenants, their trigger tokens and vendors: `Registry` (the functions' reads) and
//! `RegistryAdmin` (operators' writes and listings). Tenant and vendor items carry `rev`, a fresh
//! random value on every write: a write conditional on the `rev` it read cannot land on a change
//! made since, not even on a full replacement (a counter that `put_*` reset could come back to
//! the same value). A read-modify-write that loses such a race reads again and tries again
//! (`retry_contention`).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::TransactWriteItem;

use super::DynamoDbStore;
use super::items::{StoredTenant, TenantItem, TokenItem, VendorItem, tokens_value};
use super::keys::{self, Item, TENANT_SK, VENDOR_SK};
use super::request::{
    Attempt, Tx, Value, expression_maps, n, retry_contention, s, set_from, unavailable, val,
};
use crate::domain::{Tenant, TenantId, TokenHash, Vendor, VendorId};
use crate::ports::{
    MAX_TENANT_TOKENS, Registry, RegistryAdmin, RegistryOutcome, StoreResult, TenantEntry,
    TenantToken,
};

/// The condition that an item still has the `rev` it was read with (`None`: read without one).
fn rev_condition(rev: &Option<String>) -> (&'static str, Vec<Value>) {
    match rev {
        Some(r) => ("#rev = :rev", vec![val(":rev", s(r))]),
        None => (
            "attribute_exists(#pk) AND attribute_not_exists(#rev)",
            vec![],
        ),
    }
}

fn new_rev() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The attributes an update of a tenant or a vendor sets (`rev` renewed); the id and the
/// tokens are kept.
const TENANT_FIELDS: &[&str] = &["name", "ashby_base_url", "packages", "disabled", "rev"];
const VENDOR_FIELDS: &[&str] = &["name", "order_url", "packages", "rev"];

impl DynamoDbStore {
    async fn tenant_state(
        &self,
        op: &'static str,
        id: &TenantId,
    ) -> StoreResult<Option<StoredTenant>> {
        self.get(op, &keys::tenant(id))
            .await?
            .map(TenantItem::decode)
            .transpose()
    }

    /// The tenant a token item points at, if it exists.
    async fn token_owner(&self, token: &TokenHash) -> StoreResult<Option<TenantId>> {
        self.get("token", &keys::token(token))
            .await?
            .map(TokenItem::decode)
            .transpose()
    }

    /// One try at writing `tenant` with `token` as its only token (`put_tenant` with `replace`,
    /// `create_tenant` without). `Lost`: another write came between the reads and this write;
    /// nothing was written.
    async fn write_tenant(
        &self,
        op: &'static str,
        tenant: &Tenant,
        token: &TokenHash,
        replace: bool,
    ) -> StoreResult<Attempt<RegistryOutcome>> {
        let current = self.tenant_state(op, &tenant.id).await?;
        if current.is_some() && !replace {
            return Ok(Attempt::Done(RegistryOutcome::AlreadyExists));
        }
        let owner = self.token_owner(token).await?;
        let taken_from = owner.clone().filter(|o| o != &tenant.id);
        if taken_from.is_some() && !replace {
            return Ok(Attempt::Done(RegistryOutcome::TokenInUse));
        }
        let old_tokens = match &current {
            Some(c) => c.tokens()?,
            None => Vec::new(),
        };
        let added_at_ms = old_tokens
            .iter()
            .find(|t| t.hash == *token)
            .map_or_else(|| self.clock.now(), |t| t.added_at_ms);
        let (condition, values) = match &current {
            Some(c) => rev_condition(&c.rev),
            None => ("attribute_not_exists(#pk)", vec![]),
        };
        let only = [TenantToken {
            hash: *token,
            added_at_ms,
        }];
        let item = TenantItem::encode(tenant, &only, new_rev())?;
        let mut ops = vec![self.put_op(item, Some(condition), values)?];
        ops.push(self.token_put_op(token, &tenant.id, owner.as_ref())?);
        if let Some(other) = &taken_from {
            // The token moves here, so its old tenant must stop listing it.
            if let Some(o) = self.tenant_state(op, other).await? {
                let rest: Vec<TenantToken> = o
                    .tokens()?
                    .into_iter()
                    .filter(|t| t.hash != *token)
                    .collect();
                ops.push(self.tokens_op(other, &rest, &o.rev)?);
            }
        }
        for old in old_tokens.iter().filter(|t| t.hash != *token) {
            // Only if it is still ours: tokens are random, but a hand-made reuse must not let
            // this tenant revoke another tenant's token.
            if self.token_owner(&old.hash).await?.as_ref() == Some(&tenant.id) {
                ops.push(self.delete_op(
                    &keys::token(&old.hash),
                    "#tenant_id = :me",
                    vec![val(":me", s(tenant.id.as_str()))],
                )?);
            }
        }
        Ok(match self.transact(op, ops).await? {
            Tx::Committed => Attempt::Done(RegistryOutcome::Done),
            Tx::ConditionFailed(_) | Tx::Contended => Attempt::Lost(()),
        })
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
        self.put_op(TokenItem::encode(token, tenant)?, Some(condition), values)
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
            val(":tokens", tokens_value(tokens)?),
            val(":new_rev", s(new_rev())),
        ]);
        self.update_op(
            &keys::tenant(id),
            "SET #tokens = :tokens, #rev = :new_rev REMOVE #token_hash",
            condition,
            values,
        )
    }

    /// One try at a tenant's or vendor's read-modify-write: sets `fields` of the changed `item`,
    /// conditional on the `rev` read.
    async fn update_fields(
        &self,
        op: &'static str,
        key: &keys::Key,
        item: Item,
        fields: &[&str],
        rev: &Option<String>,
    ) -> StoreResult<bool> {
        let (condition, mut values) = rev_condition(rev);
        let (update, sets) = set_from(item, fields)?;
        values.extend(sets);
        let request = self.update_request(key, &update, condition, values);
        Ok(matches!(
            self.send_update(op, request).await?,
            Tx::Committed
        ))
    }

    /// Every item whose sort key is `sk`: a Scan of the whole table, filtered.
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
        self.scan(op, scan).await
    }
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
            .tokens()?
            .iter()
            .fold(false, |found, t| t.hash.ct_eq(token) | found);
        Ok((listed && !state.tenant.disabled).then_some(state.tenant))
    }

    async fn tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        Ok(self.tenant_state("tenant", id).await?.map(|s| s.tenant))
    }

    async fn vendor(&self, id: &VendorId) -> StoreResult<Option<Vendor>> {
        self.get("vendor", &keys::vendor(id))
            .await?
            .map(|item| VendorItem::decode(item).map(|(v, _)| v))
            .transpose()
    }

    async fn record_tenant_ats_error(&self, id: &TenantId, text: &str) -> StoreResult<bool> {
        // Not conditional on `rev`, and `rev` untouched: an operator's read-modify-write sets only
        // its own attributes, so neither write can undo the other.
        let request = self.update_request(
            &keys::tenant(id),
            "SET #ats_errors = if_not_exists(#ats_errors, :zero) + :one, #last_ats_error = :text",
            "attribute_exists(#pk)",
            vec![val(":zero", n(0)), val(":one", n(1)), val(":text", s(text))],
        );
        Ok(matches!(
            self.send_update("record_tenant_ats_error", request).await?,
            Tx::Committed
        ))
    }
}

#[async_trait]
impl RegistryAdmin for DynamoDbStore {
    async fn put_tenant(&self, tenant: &Tenant, token: &TokenHash) -> StoreResult<()> {
        // Every write is conditional on what was read: of two concurrent replacements, the loser
        // re-reads and deletes the winner's token item instead of leaving it behind.
        retry_contention("put_tenant", (), |()| {
            self.write_tenant("put_tenant", tenant, token, true)
        })
        .await?;
        Ok(())
    }

    async fn create_tenant(
        &self,
        tenant: &Tenant,
        token: &TokenHash,
    ) -> StoreResult<RegistryOutcome> {
        retry_contention("create_tenant", (), |()| {
            self.write_tenant("create_tenant", tenant, token, false)
        })
        .await
    }

    async fn update_tenant(
        &self,
        id: &TenantId,
        change: &(dyn for<'t> Fn(&'t mut Tenant) + Send + Sync),
    ) -> StoreResult<Option<Tenant>> {
        const OP: &str = "update_tenant";
        retry_contention(OP, (), |()| async move {
            let Some(state) = self.tenant_state(OP, id).await? else {
                return Ok(Attempt::Done(None));
            };
            let tokens = state.tokens()?;
            let ats = state.tenant.ats;
            let mut next = state.tenant;
            change(&mut next);
            next.id = id.clone();
            next.ats = ats;
            let item = TenantItem::encode(&next, &tokens, new_rev())?;
            let written = self
                .update_fields(OP, &keys::tenant(id), item, TENANT_FIELDS, &state.rev)
                .await?;
            Ok(if written {
                Attempt::Done(Some(next))
            } else {
                Attempt::Lost(())
            })
        })
        .await
    }

    async fn add_tenant_token(
        &self,
        tenant: &TenantId,
        token: &TokenHash,
    ) -> StoreResult<RegistryOutcome> {
        const OP: &str = "add_tenant_token";
        retry_contention(OP, (), |()| async move {
            let Some(state) = self.tenant_state(OP, tenant).await? else {
                return Ok(Attempt::Done(RegistryOutcome::NotFound));
            };
            let mut tokens = state.tokens()?;
            if tokens.iter().any(|t| t.hash == *token) {
                return Ok(Attempt::Done(RegistryOutcome::Done));
            }
            let owner = self.token_owner(token).await?;
            if owner.as_ref().is_some_and(|o| o != tenant) {
                return Ok(Attempt::Done(RegistryOutcome::TokenInUse));
            }
            if tokens.len() >= MAX_TENANT_TOKENS {
                return Ok(Attempt::Done(RegistryOutcome::TooManyTokens));
            }
            tokens.push(TenantToken {
                hash: *token,
                added_at_ms: self.clock.now(),
            });
            let ops = vec![
                self.tokens_op(tenant, &tokens, &state.rev)?,
                self.token_put_op(token, tenant, owner.as_ref())?,
            ];
            Ok(match self.transact(OP, ops).await? {
                Tx::Committed => Attempt::Done(RegistryOutcome::Done),
                Tx::ConditionFailed(_) | Tx::Contended => Attempt::Lost(()),
            })
        })
        .await
    }

    async fn revoke_tenant_token(
        &self,
        tenant: &TenantId,
        token: &TokenHash,
    ) -> StoreResult<RegistryOutcome> {
        const OP: &str = "revoke_tenant_token";
        retry_contention(OP, (), |()| async move {
            let Some(state) = self.tenant_state(OP, tenant).await? else {
                return Ok(Attempt::Done(RegistryOutcome::NotFound));
            };
            let tokens = state.tokens()?;
            if !tokens.iter().any(|t| t.hash == *token) {
                return Ok(Attempt::Done(RegistryOutcome::UnknownToken));
            }
            let rest: Vec<TenantToken> = tokens.into_iter().filter(|t| t.hash != *token).collect();
            let mut ops = vec![self.tokens_op(tenant, &rest, &state.rev)?];
            // A token item that points elsewhere is not ours to delete; unlisting the hash is
            // enough to stop it working for this tenant.
            if self.token_owner(token).await?.as_ref() == Some(tenant) {
                ops.push(self.delete_op(
                    &keys::token(token),
                    "#tenant_id = :me",
                    vec![val(":me", s(tenant.as_str()))],
                )?);
            }
            Ok(match self.transact(OP, ops).await? {
                Tx::Committed => Attempt::Done(RegistryOutcome::Done),
                Tx::ConditionFailed(_) | Tx::Contended => Attempt::Lost(()),
            })
        })
        .await
    }

    async fn tenant_tokens(&self, tenant: &TenantId) -> StoreResult<Vec<TenantToken>> {
        match self.tenant_state("tenant_tokens", tenant).await? {
            Some(state) => state.tokens(),
            None => Ok(Vec::new()),
        }
    }

    async fn list_tenants(&self) -> StoreResult<Vec<TenantEntry>> {
        let mut entries = self
            .scan_kind("list_tenants", TENANT_SK)
            .await?
            .into_iter()
            .map(|item| {
                let state = TenantItem::decode(item)?;
                Ok(TenantEntry {
                    tokens: state.tokens()?,
                    ats_errors: state.ats_errors,
                    last_ats_error: state.last_ats_error,
                    tenant: state.tenant,
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
            .set_item(Some(VendorItem::encode(vendor, new_rev())?))
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
            .set_item(Some(VendorItem::encode(vendor, new_rev())?))
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
        const OP: &str = "update_vendor";
        retry_contention(OP, (), |()| async move {
            let key = keys::vendor(id);
            let Some(item) = self.get(OP, &key).await? else {
                return Ok(Attempt::Done(None));
            };
            let (mut next, rev) = VendorItem::decode(item)?;
            change(&mut next);
            next.id = id.clone();
            let item = VendorItem::encode(&next, new_rev())?;
            let written = self
                .update_fields(OP, &key, item, VENDOR_FIELDS, &rev)
                .await?;
            Ok(if written {
                Attempt::Done(Some(next))
            } else {
                Attempt::Lost(())
            })
        })
        .await
    }

    async fn list_vendors(&self) -> StoreResult<Vec<Vendor>> {
        let mut vendors = self
            .scan_kind("list_vendors", VENDOR_SK)
            .await?
            .into_iter()
            .map(|item| VendorItem::decode(item).map(|(v, _)| v))
            .collect::<StoreResult<Vec<_>>>()?;
        vendors.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(vendors)
    }
}
