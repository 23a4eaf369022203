//! Tenants, their trigger tokens and vendors: `Registry` (the functions' reads) and
//! `RegistryAdmin` (operators' writes and listings). Tenant and vendor items carry `rev`, a fresh
//! random value on every write: a write conditional on the `rev` it read cannot land on a change
//! made since, not even on a full replacement (a counter that `put_*` reset could come back to
//! the same value). A read-modify-write that loses such a race reads again and tries again
//! (`retry_contention`).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::TransactWriteItem;

use super::DynamoDbStore;
use super::items::{InviteItem, StoredTenant, TenantItem, TokenItem, VendorItem, tokens_value};
use super::keys::{self, INVITE_SK, Item, TENANT_SK, VENDOR_SK};
use super::request::{
    Attempt, Tx, Value, expression_maps, n, retry_contention, s, set_from, unavailable, val,
};
use crate::clock::Timestamp;
use crate::domain::{
    AtsCall, DeliveryReport, Invite, KeyCheck, Tenant, TenantId, TokenHash, Vendor, VendorId,
};
use crate::ports::{
    Account, Connections, IssueOutcome, MAX_TENANT_TOKENS, Registry, RegistryAdmin,
    RegistryOutcome, StoreResult, TenantEntry, TenantToken,
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

/// What a token write does to the tenant's pending token.
#[derive(Clone, Copy)]
enum Pending {
    Keep,
    Clear,
    Set(TokenHash),
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
        self.tokens_pending_op(id, tokens, rev, Pending::Keep)
    }

    /// `tokens_op` that also sets or forgets the pending token.
    fn tokens_pending_op(
        &self,
        id: &TenantId,
        tokens: &[TenantToken],
        rev: &Option<String>,
        pending: Pending,
    ) -> StoreResult<TransactWriteItem> {
        let (condition, mut values) = rev_condition(rev);
        values.extend([
            val(":tokens", tokens_value(tokens)?),
            val(":new_rev", s(new_rev())),
        ]);
        let update = match pending {
            Pending::Keep => "SET #tokens = :tokens, #rev = :new_rev REMOVE #token_hash",
            Pending::Clear => {
                "SET #tokens = :tokens, #rev = :new_rev REMOVE #token_hash, #pending_token"
            }
            Pending::Set(hash) => {
                values.push(val(":pending", s(hash.to_hex())));
                "SET #tokens = :tokens, #rev = :new_rev, #pending_token = :pending \
                 REMOVE #token_hash"
            }
        };
        self.update_op(&keys::tenant(id), update, condition, values)
    }

    /// Deletes the token item of `token` if it still points at `tenant` (read first: an item
    /// that points elsewhere is not ours to delete, and unlisting is enough).
    async fn token_delete_op(
        &self,
        tenant: &TenantId,
        token: &TokenHash,
    ) -> StoreResult<Option<TransactWriteItem>> {
        if self.token_owner(token).await?.as_ref() != Some(tenant) {
            return Ok(None);
        }
        self.delete_op(
            &keys::token(token),
            "#tenant_id = :me",
            vec![val(":me", s(tenant.as_str()))],
        )
        .map(Some)
    }

    async fn invite_state(
        &self,
        op: &'static str,
        hash: &TokenHash,
    ) -> StoreResult<Option<Invite>> {
        self.get(op, &keys::invite(hash))
            .await?
            .map(InviteItem::decode)
            .transpose()
    }

    /// One try at `issue_connect_token`.
    async fn issue_once(
        &self,
        invite: &TokenHash,
        token: &TokenHash,
        reveal: bool,
        now: Timestamp,
    ) -> StoreResult<Attempt<IssueOutcome>> {
        const OP: &str = "issue_connect_token";
        let Some(i) = self.invite_state(OP, invite).await? else {
            return Ok(Attempt::Done(IssueOutcome::NoInvite));
        };
        if i.check(now).is_err() {
            return Ok(Attempt::Done(IssueOutcome::NoInvite));
        }
        if reveal && i.token_shown_at_ms.is_some() {
            return Ok(Attempt::Done(IssueOutcome::AlreadyShown));
        }
        let Some(state) = self.tenant_state(OP, &i.tenant_id).await? else {
            return Ok(Attempt::Done(IssueOutcome::NoInvite));
        };
        let tenant = &i.tenant_id;
        let tokens = state.tokens()?;
        let pending = state
            .health
            .pending_token
            .filter(|p| tokens.iter().any(|t| t.hash == *p));
        let mut kept: Vec<TenantToken> = tokens
            .into_iter()
            .filter(|t| Some(t.hash) != pending)
            .collect();
        if kept.len() >= MAX_TENANT_TOKENS {
            return Ok(Attempt::Done(IssueOutcome::TooManyTokens));
        }
        let next_pending = if kept.is_empty() {
            Pending::Clear
        } else {
            Pending::Set(*token)
        };
        kept.push(TenantToken {
            hash: *token,
            added_at_ms: self.clock.now(),
        });
        // The link must still work; with `reveal` its one show is used up, without it the link
        // is only checked (a replacement leaves the show for later).
        const LINK_WORKS: &str = "attribute_exists(#pk) AND attribute_not_exists(#revoked_at_ms) \
                                  AND #link_expires_at_ms > :now";
        let now_value = || vec![val(":now", n(now.as_ms()))];
        let link_op = if reveal {
            self.update_op(
                &keys::invite(invite),
                "SET #token_shown_at_ms = :now",
                &format!("{LINK_WORKS} AND attribute_not_exists(#token_shown_at_ms)"),
                now_value(),
            )?
        } else {
            self.condition_check_op(&keys::invite(invite), LINK_WORKS, now_value())?
        };
        let mut ops = vec![
            link_op,
            self.tokens_pending_op(tenant, &kept, &state.rev, next_pending)?,
            self.token_put_op(token, tenant, None)?,
        ];
        if let Some(p) = pending
            && let Some(delete) = self.token_delete_op(tenant, &p).await?
        {
            ops.push(delete);
        }
        Ok(match self.transact(OP, ops).await? {
            Tx::Committed => Attempt::Done(IssueOutcome::Issued),
            Tx::ConditionFailed(_) | Tx::Contended => Attempt::Lost(()),
        })
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
    async fn account_by_token(&self, token: &TokenHash) -> StoreResult<Option<Account>> {
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
        Ok((listed && !state.tenant.disabled).then_some(Account {
            tenant: state.tenant,
            health: state.health,
        }))
    }

    async fn account(&self, id: &TenantId) -> StoreResult<Option<Account>> {
        Ok(self.tenant_state("tenant", id).await?.map(|s| Account {
            tenant: s.tenant,
            health: s.health,
        }))
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

    async fn record_ats_call(
        &self,
        id: &TenantId,
        call: &AtsCall,
        stale_before: Timestamp,
    ) -> StoreResult<bool> {
        // Like the ATS errors: `rev` untouched, nothing an operator writes. Of concurrent calls
        // the first write wins and the others find the condition false.
        self.update(
            "record_ats_call",
            &keys::tenant(id),
            "SET #last_call_ms = :at, #last_call_route = :route",
            "attribute_exists(#pk) AND (attribute_not_exists(#last_call_ms) OR \
             #last_call_ms < :stale)",
            vec![
                val(":at", n(call.at_ms.as_ms())),
                val(":route", s(&call.route)),
                val(":stale", n(stale_before.as_ms())),
            ],
        )
        .await
    }

    async fn record_delivery(
        &self,
        id: &TenantId,
        report: &DeliveryReport,
        stale_before: Timestamp,
    ) -> StoreResult<bool> {
        self.update(
            "record_delivery",
            &keys::tenant(id),
            "SET #delivery_ms = :at, #delivery_outcome = :outcome, #delivery_detail = :detail",
            "attribute_exists(#pk) AND (attribute_not_exists(#delivery_outcome) OR \
             #delivery_outcome <> :outcome OR #delivery_ms < :stale)",
            vec![
                val(":at", n(report.at_ms.as_ms())),
                val(":outcome", s(report.outcome.as_str())),
                val(":detail", s(&report.detail)),
                val(":stale", n(stale_before.as_ms())),
            ],
        )
        .await
    }

    async fn complete_rotation(&self, id: &TenantId, token: &TokenHash) -> StoreResult<bool> {
        const OP: &str = "complete_rotation";
        retry_contention(OP, (), |()| async move {
            let Some(state) = self.tenant_state(OP, id).await? else {
                return Ok(Attempt::Done(false));
            };
            let tokens = state.tokens()?;
            if state.health.pending_token.as_ref() != Some(token)
                || !tokens.iter().any(|t| t.hash == *token)
            {
                return Ok(Attempt::Done(false));
            }
            // Unlisting the other tokens is what stops them (a token works only while its
            // tenant lists it); their token items stay behind, pointing at a tenant that no
            // longer lists them, so that the call that ends a rotation (any Ashby-facing
            // function) writes one item and needs no delete.
            let kept: Vec<TenantToken> = tokens.into_iter().filter(|t| t.hash == *token).collect();
            let op = self.tokens_pending_op(id, &kept, &state.rev, Pending::Clear)?;
            Ok(match self.transact(OP, vec![op]).await? {
                Tx::Committed => Attempt::Done(true),
                Tx::ConditionFailed(_) | Tx::Contended => Attempt::Lost(()),
            })
        })
        .await
    }
}

#[async_trait]
impl Connections for DynamoDbStore {
    async fn invite(&self, hash: &TokenHash) -> StoreResult<Option<Invite>> {
        self.invite_state("invite", hash).await
    }

    async fn issue_connect_token(
        &self,
        invite: &TokenHash,
        token: &TokenHash,
        reveal: bool,
        now: Timestamp,
    ) -> StoreResult<IssueOutcome> {
        retry_contention("issue_connect_token", (), |()| {
            self.issue_once(invite, token, reveal, now)
        })
        .await
    }

    async fn record_key_check(&self, id: &TenantId, check: &KeyCheck) -> StoreResult<bool> {
        self.update(
            "record_key_check",
            &keys::tenant(id),
            "SET #key_checked_ms = :at, #key_label = :label, #key_scopes_verified = :verified",
            "attribute_exists(#pk)",
            vec![
                val(":at", n(check.at_ms.as_ms())),
                val(":label", s(&check.label)),
                val(
                    ":verified",
                    aws_sdk_dynamodb::types::AttributeValue::Bool(check.scopes_verified),
                ),
            ],
        )
        .await
    }

    async fn failures(&self, key: &str) -> StoreResult<u32> {
        let item = self.get("failures", &keys::limit(key)).await?;
        Ok(item
            .and_then(|i| i.get("failures").cloned())
            .and_then(|v| v.as_n().ok().and_then(|n| n.parse().ok()))
            .unwrap_or(0))
    }

    async fn add_failure(&self, key: &str, expires_at_s: i64) -> StoreResult<u32> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(keys::limit(key).item()))
            .update_expression("ADD #failures :one SET #expires_at = :exp")
            .expression_attribute_names("#failures", "failures")
            .expression_attribute_names("#expires_at", "expires_at")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":exp", n(expires_at_s))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| unavailable("add_failure", &e))?;
        Ok(out
            .attributes
            .and_then(|a| a.get("failures").cloned())
            .and_then(|v| v.as_n().ok().and_then(|n| n.parse().ok()))
            .unwrap_or(1))
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
            let pending = if state.health.pending_token.as_ref() == Some(token) {
                Pending::Clear
            } else {
                Pending::Keep
            };
            let mut ops = vec![self.tokens_pending_op(tenant, &rest, &state.rev, pending)?];
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

    async fn create_tenant_awaiting(&self, tenant: &Tenant) -> StoreResult<RegistryOutcome> {
        let item = TenantItem::encode(tenant, &[], new_rev())?;
        let op = self.put_op(item, Some("attribute_not_exists(#pk)"), vec![])?;
        Ok(
            match self.transact("create_tenant_awaiting", vec![op]).await? {
                Tx::Committed => RegistryOutcome::Done,
                Tx::ConditionFailed(_) => RegistryOutcome::AlreadyExists,
                Tx::Contended => {
                    return Err(crate::ports::StoreError::Unavailable(
                        "create_tenant_awaiting: contended".into(),
                    ));
                }
            },
        )
    }

    async fn create_invite(&self, invite: &Invite) -> StoreResult<RegistryOutcome> {
        if self
            .tenant_state("create_invite", &invite.tenant_id)
            .await?
            .is_none()
        {
            return Ok(RegistryOutcome::NotFound);
        }
        let op = self.put_op(
            InviteItem::encode(invite)?,
            Some("attribute_not_exists(#pk)"),
            vec![],
        )?;
        match self.transact("create_invite", vec![op]).await? {
            Tx::Committed => Ok(RegistryOutcome::Done),
            // 256 random bits do not collide; a repeat of the same invite is an operator's bug.
            Tx::ConditionFailed(_) => Ok(RegistryOutcome::AlreadyExists),
            Tx::Contended => Err(crate::ports::StoreError::Unavailable(
                "create_invite: contended".into(),
            )),
        }
    }

    async fn invites(&self, tenant: &TenantId) -> StoreResult<Vec<Invite>> {
        let mut out = self
            .scan_kind("invites", INVITE_SK)
            .await?
            .into_iter()
            .map(InviteItem::decode)
            .filter(|i| i.as_ref().map_or(true, |i| &i.tenant_id == tenant))
            .collect::<StoreResult<Vec<_>>>()?;
        out.sort_by(|a, b| {
            (b.created_at_ms, b.hash.to_hex()).cmp(&(a.created_at_ms, a.hash.to_hex()))
        });
        Ok(out)
    }

    async fn revoke_invite(
        &self,
        tenant: &TenantId,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<RegistryOutcome> {
        let Some(invite) = self
            .invites(tenant)
            .await?
            .into_iter()
            .find(|i| i.id() == id)
        else {
            return Ok(RegistryOutcome::UnknownInvite);
        };
        self.update(
            "revoke_invite",
            &keys::invite(&invite.hash),
            "SET #revoked_at_ms = if_not_exists(#revoked_at_ms, :now)",
            "attribute_exists(#pk)",
            vec![val(":now", n(now.as_ms()))],
        )
        .await?;
        Ok(RegistryOutcome::Done)
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
                    health: state.health,
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
