//! In-memory store for the local hub and unit tests. One mutex makes every method atomic, which
//! gives the same guarantees as DynamoDB's conditional and transactional writes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::clock::{Clock, SystemClock, Timestamp};
use crate::domain::{
    Assessment, AssessmentId, AtsCall, Delivery, DeliveryReport, DeliveryState, Invite, KeyCheck,
    NewDelivery, Tenant, TenantHealth, TenantId, TokenHash, Vendor, VendorId,
};
use crate::ports::{
    Account, Assessments, ChangeOutcome, ChangeWrite, Connections, CreateOutcome, DeliveryQueue,
    DueRef, IssueOutcome, MAX_TENANT_TOKENS, NewAssessment, QueueAdmin, Registry, RegistryAdmin,
    RegistryOutcome, Retry, StartKey, StoreError, StoreResult, TenantEntry, TenantToken,
};

#[derive(Default)]
struct State {
    tenants: HashMap<TenantId, Tenant>,
    /// Each token's tenant and when it was added.
    tokens: HashMap<TokenHash, (TenantId, Timestamp)>,
    vendors: HashMap<VendorId, Vendor>,
    assessments: HashMap<AssessmentId, Assessment>,
    start_keys: HashMap<StartKey, AssessmentId>,
    webhooks: HashSet<(VendorId, String)>,
    deliveries: HashMap<AssessmentId, BTreeMap<u64, Delivery>>,
    /// Per tenant: ATS reports naming none of its assessments, and the last one.
    tenant_ats_errors: HashMap<TenantId, (u32, String)>,
    /// Per tenant: what the functions recorded of its connection.
    health: HashMap<TenantId, TenantHealth>,
    invites: HashMap<TokenHash, Invite>,
    failures: HashMap<String, (u32, i64)>,
}

pub struct MemoryStore {
    state: Mutex<State>,
    /// When a token was added.
    clock: Arc<dyn Clock>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            state: Mutex::default(),
            clock,
        }
    }

    fn lock(&self) -> StoreResult<MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))
    }
}

/// The tokens `tenant` holds, oldest first (ties by hash, so that the order is stable).
fn tokens_of(s: &State, tenant: &TenantId) -> Vec<TenantToken> {
    let mut tokens: Vec<TenantToken> = s
        .tokens
        .iter()
        .filter(|(_, (owner, _))| owner == tenant)
        .map(|(hash, (_, added_at_ms))| TenantToken {
            hash: *hash,
            added_at_ms: *added_at_ms,
        })
        .collect();
    tokens.sort_by_key(|t| (t.added_at_ms, t.hash.to_hex()));
    tokens
}

fn bump(a: &mut Assessment, now_ms: Timestamp) {
    a.version += 1;
    a.updated_at_ms = now_ms;
}

impl State {
    fn account(&self, id: &TenantId) -> Option<Account> {
        self.tenants.get(id).map(|t| Account {
            tenant: t.clone(),
            health: self.health.get(id).cloned().unwrap_or_default(),
        })
    }

    /// Forgets a tenant's pending token if it is `token` (revoked, or the rotation is over).
    fn clear_pending(&mut self, tenant: &TenantId, token: &TokenHash) {
        if let Some(h) = self.health.get_mut(tenant)
            && h.pending_token.as_ref() == Some(token)
        {
            h.pending_token = None;
        }
    }
}

#[async_trait]
impl Registry for MemoryStore {
    async fn account_by_token(&self, token: &TokenHash) -> StoreResult<Option<Account>> {
        let s = self.lock()?;
        let found = s
            .tokens
            .iter()
            .find(|(h, _)| h.ct_eq(token))
            .and_then(|(_, (id, _))| s.account(id))
            .filter(|a| !a.tenant.disabled);
        Ok(found)
    }

    async fn account(&self, id: &TenantId) -> StoreResult<Option<Account>> {
        Ok(self.lock()?.account(id))
    }

    async fn vendor(&self, id: &VendorId) -> StoreResult<Option<Vendor>> {
        Ok(self.lock()?.vendors.get(id).cloned())
    }

    async fn record_tenant_ats_error(&self, id: &TenantId, text: &str) -> StoreResult<bool> {
        let mut s = self.lock()?;
        if !s.tenants.contains_key(id) {
            return Ok(false);
        }
        let entry = s.tenant_ats_errors.entry(id.clone()).or_default();
        entry.0 += 1;
        entry.1 = text.to_owned();
        Ok(true)
    }

    async fn record_ats_call(
        &self,
        id: &TenantId,
        call: &AtsCall,
        stale_before: Timestamp,
    ) -> StoreResult<bool> {
        let mut s = self.lock()?;
        if !s.tenants.contains_key(id) {
            return Ok(false);
        }
        let h = s.health.entry(id.clone()).or_default();
        if h.last_call
            .as_ref()
            .is_some_and(|c| c.at_ms >= stale_before)
        {
            return Ok(false);
        }
        h.last_call = Some(call.clone());
        Ok(true)
    }

    async fn record_delivery(
        &self,
        id: &TenantId,
        report: &DeliveryReport,
        stale_before: Timestamp,
    ) -> StoreResult<bool> {
        let mut s = self.lock()?;
        if !s.tenants.contains_key(id) {
            return Ok(false);
        }
        let h = s.health.entry(id.clone()).or_default();
        if h.last_delivery
            .as_ref()
            .is_some_and(|d| d.outcome == report.outcome && d.at_ms >= stale_before)
        {
            return Ok(false);
        }
        h.last_delivery = Some(report.clone());
        Ok(true)
    }

    async fn complete_rotation(&self, id: &TenantId, token: &TokenHash) -> StoreResult<bool> {
        let mut s = self.lock()?;
        let pending = s.health.get(id).and_then(|h| h.pending_token);
        let listed = s.tokens.get(token).is_some_and(|(owner, _)| owner == id);
        if pending.as_ref() != Some(token) || !listed {
            return Ok(false);
        }
        s.tokens
            .retain(|hash, (owner, _)| owner != id || hash == token);
        s.clear_pending(id, token);
        Ok(true)
    }
}

#[async_trait]
impl Connections for MemoryStore {
    async fn invite(&self, hash: &TokenHash) -> StoreResult<Option<Invite>> {
        Ok(self.lock()?.invites.get(hash).cloned())
    }

    async fn issue_connect_token(
        &self,
        invite: &TokenHash,
        token: &TokenHash,
        reveal: bool,
        now: Timestamp,
    ) -> StoreResult<IssueOutcome> {
        let mut s = self.lock()?;
        let Some(i) = s.invites.get(invite).filter(|i| i.check(now).is_ok()) else {
            return Ok(IssueOutcome::NoInvite);
        };
        if reveal && i.token_shown_at_ms.is_some() {
            return Ok(IssueOutcome::AlreadyShown);
        }
        let tenant = i.tenant_id.clone();
        if !s.tenants.contains_key(&tenant) {
            return Ok(IssueOutcome::NoInvite);
        }
        if s.tokens.contains_key(token) {
            // A fresh random token is never taken; refuse rather than move another's.
            return Ok(IssueOutcome::TooManyTokens);
        }
        let pending = s
            .health
            .get(&tenant)
            .and_then(|h| h.pending_token)
            .filter(|p| s.tokens.get(p).is_some_and(|(o, _)| o == &tenant));
        let kept = tokens_of(&s, &tenant)
            .into_iter()
            .filter(|t| Some(t.hash) != pending)
            .count();
        if kept >= MAX_TENANT_TOKENS {
            return Ok(IssueOutcome::TooManyTokens);
        }
        if let Some(p) = pending {
            s.tokens.remove(&p);
        }
        s.tokens.insert(*token, (tenant.clone(), self.clock.now()));
        s.health.entry(tenant.clone()).or_default().pending_token = (kept > 0).then_some(*token);
        if reveal && let Some(i) = s.invites.get_mut(invite) {
            i.token_shown_at_ms = Some(now);
        }
        Ok(IssueOutcome::Issued)
    }

    async fn record_key_check(&self, id: &TenantId, check: &KeyCheck) -> StoreResult<bool> {
        let mut s = self.lock()?;
        if !s.tenants.contains_key(id) {
            return Ok(false);
        }
        s.health.entry(id.clone()).or_default().key = Some(check.clone());
        Ok(true)
    }

    async fn failures(&self, key: &str) -> StoreResult<u32> {
        Ok(self.lock()?.failures.get(key).map_or(0, |f| f.0))
    }

    async fn add_failure(&self, key: &str, expires_at_s: i64) -> StoreResult<u32> {
        let mut s = self.lock()?;
        let now_s = self.clock.now().as_secs();
        s.failures.retain(|_, (_, until)| *until > now_s);
        let f = s
            .failures
            .entry(key.to_owned())
            .or_insert((0, expires_at_s));
        f.0 += 1;
        Ok(f.0)
    }
}

#[async_trait]
impl Assessments for MemoryStore {
    async fn create_assessment(&self, new: &NewAssessment) -> StoreResult<CreateOutcome> {
        let mut s = self.lock()?;
        let live = s
            .start_keys
            .get(&new.start_key)
            .and_then(|id| s.assessments.get(id))
            .filter(|a| new.keep_finished || !a.status.is_terminal());
        if let Some(a) = live {
            return Ok(CreateOutcome::Existing(Box::new(a.clone())));
        }
        let id = new.assessment.id;
        let mut a = new.assessment.clone();
        a.update_seq += 1;
        let order = delivery(id, a.update_seq, &new.order, a.created_at_ms);
        s.start_keys.insert(new.start_key.clone(), id);
        s.deliveries.entry(id).or_default().insert(order.seq, order);
        s.assessments.insert(id, a);
        Ok(CreateOutcome::Created)
    }

    async fn assessment(&self, id: AssessmentId) -> StoreResult<Option<Assessment>> {
        Ok(self.lock()?.assessments.get(&id).cloned())
    }

    async fn apply(&self, w: &ChangeWrite) -> StoreResult<ChangeOutcome> {
        let mut s = self.lock()?;
        let marker = w
            .marker
            .as_ref()
            .map(|m| (m.vendor_id.clone(), m.webhook_id.clone()));
        if marker.as_ref().is_some_and(|m| s.webhooks.contains(m)) {
            return Ok(ChangeOutcome::Duplicate);
        }
        if let Some(c) = &w.change {
            match s.assessments.get(&w.assessment_id) {
                Some(a)
                    if a.version == c.expected_version && a.update_seq == c.expected_update_seq => {
                }
                _ => return Ok(ChangeOutcome::Conflict),
            }
        }
        if let Some(seq) = w.settle {
            let open = s
                .deliveries
                .get(&w.assessment_id)
                .and_then(|m| m.get(&seq))
                .is_some_and(|d| d.state != DeliveryState::Delivered);
            if !open {
                return Ok(ChangeOutcome::Conflict);
            }
        }
        if let Some(c) = &w.change {
            let Some(a) = s.assessments.get_mut(&w.assessment_id) else {
                return Ok(ChangeOutcome::Conflict);
            };
            a.status = c.status;
            a.status_label = c.status_label.clone();
            if c.rejection_message.is_some() {
                a.rejection_message = c.rejection_message.clone();
            }
            if c.vendor_reference.is_some() {
                a.vendor_reference = c.vendor_reference.clone();
            }
            if let Some(ts) = c.update_ms {
                a.last_update_ms = ts;
            }
            if c.summary.is_some() {
                a.summary = c.summary.clone();
            }
            if c.ats_error.is_some() {
                a.ats_errors += 1;
                a.last_ats_error = c.ats_error.clone();
            }
            let first = a.update_seq + 1;
            a.update_seq += c.deliveries.len() as u64;
            bump(a, c.now_ms);
            let added: Vec<Delivery> = c
                .deliveries
                .iter()
                .enumerate()
                .map(|(i, d)| delivery(w.assessment_id, first + i as u64, d, c.now_ms))
                .collect();
            let queue = s.deliveries.entry(w.assessment_id).or_default();
            for d in added {
                queue.insert(d.seq, d);
            }
        }
        if let Some(seq) = w.settle
            && let Some(d) = s
                .deliveries
                .get_mut(&w.assessment_id)
                .and_then(|m| m.get_mut(&seq))
        {
            d.state = DeliveryState::Delivered;
            d.lease_until_ms = Timestamp::EPOCH;
        }
        if let Some(m) = marker {
            s.webhooks.insert(m);
        }
        Ok(ChangeOutcome::Applied)
    }
}

#[async_trait]
impl DeliveryQueue for MemoryStore {
    async fn open_deliveries(&self, id: AssessmentId) -> StoreResult<Vec<Delivery>> {
        let s = self.lock()?;
        Ok(s.deliveries
            .get(&id)
            .map(|m| {
                m.values()
                    .filter(|d| d.state != DeliveryState::Delivered)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn claim_delivery(
        &self,
        id: AssessmentId,
        seq: u64,
        now_ms: Timestamp,
        until_ms: Timestamp,
    ) -> StoreResult<bool> {
        let mut s = self.lock()?;
        match s.deliveries.get_mut(&id).and_then(|m| m.get_mut(&seq)) {
            Some(d) if d.state == DeliveryState::Pending && d.lease_until_ms <= now_ms => {
                d.lease_until_ms = until_ms;
                d.attempts += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delivery_succeeded(&self, id: AssessmentId, seq: u64) -> StoreResult<()> {
        let mut s = self.lock()?;
        if let Some(d) = s.deliveries.get_mut(&id).and_then(|m| m.get_mut(&seq)) {
            d.state = DeliveryState::Delivered;
            d.lease_until_ms = Timestamp::EPOCH;
            d.last_error = None;
        }
        Ok(())
    }

    async fn delivery_failed(
        &self,
        id: AssessmentId,
        seq: u64,
        error: &str,
        retry: &Retry,
    ) -> StoreResult<()> {
        let mut s = self.lock()?;
        if let Some(d) = s.deliveries.get_mut(&id).and_then(|m| m.get_mut(&seq))
            && d.state == DeliveryState::Pending
        {
            d.lease_until_ms = Timestamp::EPOCH;
            d.last_error = Some(error.to_owned());
            match retry {
                Retry::At(at) => d.next_attempt_ms = *at,
                Retry::Park(why) => d.state = DeliveryState::Parked(why.clone()),
                Retry::Dead(why) => d.state = DeliveryState::Dead(why.clone()),
            }
        }
        Ok(())
    }

    async fn due_deliveries(&self, now_ms: Timestamp, limit: usize) -> StoreResult<Vec<DueRef>> {
        let s = self.lock()?;
        let mut due: Vec<DueRef> = s
            .deliveries
            .values()
            .flat_map(|m| m.values())
            .filter(|d| d.state == DeliveryState::Pending && d.next_attempt_ms <= now_ms)
            .map(|d| DueRef {
                assessment_id: d.assessment_id,
                seq: d.seq,
                next_attempt_ms: d.next_attempt_ms,
            })
            .collect();
        due.sort_by_key(|d| (d.next_attempt_ms, d.seq));
        due.truncate(limit);
        Ok(due)
    }

    async fn stuck_deliveries(&self, limit: usize) -> StoreResult<Vec<Delivery>> {
        let s = self.lock()?;
        let mut stuck: Vec<Delivery> = s
            .deliveries
            .values()
            .flat_map(|m| m.values())
            .filter(|d| matches!(d.state, DeliveryState::Dead(_) | DeliveryState::Parked(_)))
            .cloned()
            .collect();
        stuck.sort_by_key(|d| (d.created_ms, d.seq));
        stuck.truncate(limit);
        Ok(stuck)
    }

    async fn redeliver(&self, id: AssessmentId, seq: u64, now_ms: Timestamp) -> StoreResult<bool> {
        let mut s = self.lock()?;
        match s.deliveries.get_mut(&id).and_then(|m| m.get_mut(&seq)) {
            Some(d) if matches!(d.state, DeliveryState::Dead(_) | DeliveryState::Parked(_)) => {
                d.state = DeliveryState::Pending;
                d.next_attempt_ms = now_ms;
                d.lease_until_ms = Timestamp::EPOCH;
                d.created_ms = now_ms;
                d.attempts = 0;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[async_trait]
impl RegistryAdmin for MemoryStore {
    async fn put_tenant(&self, tenant: &Tenant, token: &TokenHash) -> StoreResult<()> {
        let mut s = self.lock()?;
        let added_at_ms = match s.tokens.get(token) {
            Some((owner, at)) if owner == &tenant.id => *at,
            _ => self.clock.now(),
        };
        s.tokens.retain(|_, (owner, _)| owner != &tenant.id);
        s.tokens.insert(*token, (tenant.id.clone(), added_at_ms));
        s.tenants.insert(tenant.id.clone(), tenant.clone());
        // A replaced tenant starts afresh, as a replaced item does in DynamoDB.
        s.tenant_ats_errors.remove(&tenant.id);
        s.health.remove(&tenant.id);
        Ok(())
    }

    async fn create_tenant(
        &self,
        tenant: &Tenant,
        token: &TokenHash,
    ) -> StoreResult<RegistryOutcome> {
        let mut s = self.lock()?;
        if s.tenants.contains_key(&tenant.id) {
            return Ok(RegistryOutcome::AlreadyExists);
        }
        if s.tokens.contains_key(token) {
            return Ok(RegistryOutcome::TokenInUse);
        }
        s.tokens
            .insert(*token, (tenant.id.clone(), self.clock.now()));
        s.tenants.insert(tenant.id.clone(), tenant.clone());
        Ok(RegistryOutcome::Done)
    }

    async fn update_tenant(
        &self,
        id: &TenantId,
        change: &(dyn for<'t> Fn(&'t mut Tenant) + Send + Sync),
    ) -> StoreResult<Option<Tenant>> {
        let mut s = self.lock()?;
        let Some(stored) = s.tenants.get_mut(id) else {
            return Ok(None);
        };
        let mut next = stored.clone();
        change(&mut next);
        next.id = id.clone();
        next.ats = stored.ats;
        *stored = next.clone();
        Ok(Some(next))
    }

    async fn add_tenant_token(
        &self,
        tenant: &TenantId,
        token: &TokenHash,
    ) -> StoreResult<RegistryOutcome> {
        let mut s = self.lock()?;
        if !s.tenants.contains_key(tenant) {
            return Ok(RegistryOutcome::NotFound);
        }
        match s.tokens.get(token) {
            Some((owner, _)) if owner == tenant => return Ok(RegistryOutcome::Done),
            Some(_) => return Ok(RegistryOutcome::TokenInUse),
            None => {}
        }
        if tokens_of(&s, tenant).len() >= MAX_TENANT_TOKENS {
            return Ok(RegistryOutcome::TooManyTokens);
        }
        s.tokens.insert(*token, (tenant.clone(), self.clock.now()));
        Ok(RegistryOutcome::Done)
    }

    async fn revoke_tenant_token(
        &self,
        tenant: &TenantId,
        token: &TokenHash,
    ) -> StoreResult<RegistryOutcome> {
        let mut s = self.lock()?;
        if !s.tenants.contains_key(tenant) {
            return Ok(RegistryOutcome::NotFound);
        }
        match s.tokens.get(token) {
            Some((owner, _)) if owner == tenant => {
                s.tokens.remove(token);
                s.clear_pending(tenant, token);
                Ok(RegistryOutcome::Done)
            }
            _ => Ok(RegistryOutcome::UnknownToken),
        }
    }

    async fn create_tenant_awaiting(&self, tenant: &Tenant) -> StoreResult<RegistryOutcome> {
        let mut s = self.lock()?;
        if s.tenants.contains_key(&tenant.id) {
            return Ok(RegistryOutcome::AlreadyExists);
        }
        s.tenants.insert(tenant.id.clone(), tenant.clone());
        Ok(RegistryOutcome::Done)
    }

    async fn create_invite(&self, invite: &Invite) -> StoreResult<RegistryOutcome> {
        let mut s = self.lock()?;
        if !s.tenants.contains_key(&invite.tenant_id) {
            return Ok(RegistryOutcome::NotFound);
        }
        s.invites.insert(invite.hash, invite.clone());
        Ok(RegistryOutcome::Done)
    }

    async fn invites(&self, tenant: &TenantId) -> StoreResult<Vec<Invite>> {
        let mut out: Vec<Invite> = self
            .lock()?
            .invites
            .values()
            .filter(|i| &i.tenant_id == tenant)
            .cloned()
            .collect();
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
        let mut s = self.lock()?;
        let Some(i) = s
            .invites
            .values_mut()
            .find(|i| &i.tenant_id == tenant && i.id() == id)
        else {
            return Ok(RegistryOutcome::UnknownInvite);
        };
        i.revoked_at_ms.get_or_insert(now);
        Ok(RegistryOutcome::Done)
    }

    async fn tenant_tokens(&self, tenant: &TenantId) -> StoreResult<Vec<TenantToken>> {
        Ok(tokens_of(&*self.lock()?, tenant))
    }

    async fn list_tenants(&self) -> StoreResult<Vec<TenantEntry>> {
        let s = self.lock()?;
        let mut entries: Vec<TenantEntry> = s
            .tenants
            .values()
            .map(|t| {
                let errors = s.tenant_ats_errors.get(&t.id);
                TenantEntry {
                    tenant: t.clone(),
                    tokens: tokens_of(&s, &t.id),
                    ats_errors: errors.map_or(0, |e| e.0),
                    last_ats_error: errors.map(|e| e.1.clone()),
                    health: s.health.get(&t.id).cloned().unwrap_or_default(),
                }
            })
            .collect();
        entries.sort_by(|a, b| a.tenant.id.cmp(&b.tenant.id));
        Ok(entries)
    }

    async fn put_vendor(&self, vendor: &Vendor) -> StoreResult<()> {
        self.lock()?
            .vendors
            .insert(vendor.id.clone(), vendor.clone());
        Ok(())
    }

    async fn create_vendor(&self, vendor: &Vendor) -> StoreResult<RegistryOutcome> {
        let mut s = self.lock()?;
        if s.vendors.contains_key(&vendor.id) {
            return Ok(RegistryOutcome::AlreadyExists);
        }
        s.vendors.insert(vendor.id.clone(), vendor.clone());
        Ok(RegistryOutcome::Done)
    }

    async fn update_vendor(
        &self,
        id: &VendorId,
        change: &(dyn for<'v> Fn(&'v mut Vendor) + Send + Sync),
    ) -> StoreResult<Option<Vendor>> {
        let mut s = self.lock()?;
        let Some(stored) = s.vendors.get_mut(id) else {
            return Ok(None);
        };
        let mut next = stored.clone();
        change(&mut next);
        next.id = id.clone();
        *stored = next.clone();
        Ok(Some(next))
    }

    async fn list_vendors(&self) -> StoreResult<Vec<Vendor>> {
        let mut vendors: Vec<Vendor> = self.lock()?.vendors.values().cloned().collect();
        vendors.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(vendors)
    }
}

#[async_trait]
impl QueueAdmin for MemoryStore {
    async fn deliveries(&self, id: AssessmentId) -> StoreResult<Vec<Delivery>> {
        let s = self.lock()?;
        Ok(s.deliveries
            .get(&id)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }
}

fn delivery(id: AssessmentId, seq: u64, d: &NewDelivery, now_ms: Timestamp) -> Delivery {
    Delivery {
        assessment_id: id,
        seq,
        kind: d.kind,
        body: d.body.clone(),
        state: DeliveryState::Pending,
        attempts: 0,
        created_ms: now_ms,
        next_attempt_ms: d.next_attempt_ms,
        lease_until_ms: d.leased_until_ms,
        last_error: None,
    }
}
