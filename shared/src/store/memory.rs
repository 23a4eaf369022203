//! In-memory store for the local hub and unit tests. One mutex makes every method atomic, which
//! gives the same guarantees as DynamoDB's conditional and transactional writes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    CallbackOutcome, CallbackWrite, CreateOutcome, NewAssessment, StartKey, Store, StoreError,
    StoreResult,
};
use crate::domain::{
    Assessment, AssessmentId, OutboxUpdate, Status, Tenant, TenantId, TokenHash, Vendor, VendorId,
};

#[derive(Default)]
struct State {
    tenants: HashMap<TenantId, Tenant>,
    tokens: HashMap<TokenHash, TenantId>,
    vendors: HashMap<VendorId, Vendor>,
    assessments: HashMap<AssessmentId, Assessment>,
    start_keys: HashMap<StartKey, AssessmentId>,
    orders: HashMap<AssessmentId, String>,
    webhooks: HashSet<(VendorId, String)>,
    outbox: HashMap<AssessmentId, BTreeMap<u64, OutboxUpdate>>,
}

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> StoreResult<MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| StoreError::Unavailable("memory store lock poisoned".into()))
    }
}

fn bump(a: &mut Assessment, now_ms: i64) {
    a.version += 1;
    a.updated_at_ms = now_ms;
}

#[async_trait]
impl Store for MemoryStore {
    async fn put_tenant(&self, tenant: &Tenant, token: &TokenHash) -> StoreResult<()> {
        let mut s = self.lock()?;
        s.tokens.retain(|_, t| t != &tenant.id);
        s.tokens.insert(*token, tenant.id.clone());
        s.tenants.insert(tenant.id.clone(), tenant.clone());
        Ok(())
    }

    async fn tenant_by_token(&self, token: &TokenHash) -> StoreResult<Option<Tenant>> {
        let s = self.lock()?;
        let found = s
            .tokens
            .iter()
            .find(|(h, _)| h.ct_eq(token))
            .and_then(|(_, id)| s.tenants.get(id))
            .filter(|t| !t.disabled)
            .cloned();
        Ok(found)
    }

    async fn tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        Ok(self.lock()?.tenants.get(id).cloned())
    }

    async fn put_vendor(&self, vendor: &Vendor) -> StoreResult<()> {
        self.lock()?
            .vendors
            .insert(vendor.id.clone(), vendor.clone());
        Ok(())
    }

    async fn vendor(&self, id: &VendorId) -> StoreResult<Option<Vendor>> {
        Ok(self.lock()?.vendors.get(id).cloned())
    }

    async fn create_assessment(&self, new: &NewAssessment) -> StoreResult<CreateOutcome> {
        let mut s = self.lock()?;
        let live = s
            .start_keys
            .get(&new.start_key)
            .and_then(|id| s.assessments.get(id))
            .filter(|a| !a.status.is_terminal());
        if let Some(a) = live {
            return Ok(CreateOutcome::Existing(Box::new(a.clone())));
        }
        let id = new.assessment.id;
        s.start_keys.insert(new.start_key.clone(), id);
        s.assessments.insert(id, new.assessment.clone());
        s.orders.insert(id, new.order_body.clone());
        Ok(CreateOutcome::Created)
    }

    async fn assessment(&self, id: AssessmentId) -> StoreResult<Option<Assessment>> {
        Ok(self.lock()?.assessments.get(&id).cloned())
    }

    async fn order_body(&self, id: AssessmentId) -> StoreResult<Option<String>> {
        Ok(self.lock()?.orders.get(&id).cloned())
    }

    async fn claim_order(&self, id: AssessmentId, now_ms: i64, until_ms: i64) -> StoreResult<bool> {
        let mut s = self.lock()?;
        match s.assessments.get_mut(&id) {
            Some(a) if a.status == Status::Ordering && a.order_lease_until_ms <= now_ms => {
                a.order_lease_until_ms = until_ms;
                bump(a, now_ms);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn record_order_accepted(
        &self,
        id: AssessmentId,
        vendor_reference: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<()> {
        let mut s = self.lock()?;
        if let Some(a) = s.assessments.get_mut(&id) {
            if a.status == Status::Ordering {
                a.status = Status::Ordered;
            }
            if let Some(r) = vendor_reference {
                a.vendor_reference = Some(r.to_owned());
            }
            a.order_lease_until_ms = 0;
            bump(a, now_ms);
        }
        Ok(())
    }

    async fn record_order_rejected(
        &self,
        id: AssessmentId,
        message: &str,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let mut s = self.lock()?;
        match s.assessments.get_mut(&id) {
            Some(a) if a.status == Status::Ordering => {
                a.status = Status::Rejected;
                a.rejection_message = Some(message.to_owned());
                a.order_lease_until_ms = 0;
                bump(a, now_ms);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release_order(&self, id: AssessmentId) -> StoreResult<()> {
        let mut s = self.lock()?;
        if let Some(a) = s.assessments.get_mut(&id) {
            a.order_lease_until_ms = 0;
            a.version += 1;
        }
        Ok(())
    }

    async fn record_cancelled(&self, id: AssessmentId, now_ms: i64) -> StoreResult<bool> {
        let mut s = self.lock()?;
        match s.assessments.get_mut(&id) {
            Some(a) if !a.status.is_terminal() => {
                a.status = Status::Cancelled;
                a.order_lease_until_ms = 0;
                bump(a, now_ms);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn apply_callback(&self, w: &CallbackWrite) -> StoreResult<CallbackOutcome> {
        let mut s = self.lock()?;
        let marker = (w.vendor_id.clone(), w.webhook_id.clone());
        if s.webhooks.contains(&marker) {
            return Ok(CallbackOutcome::Duplicate);
        }
        if let Some(c) = &w.change {
            let Some(a) = s.assessments.get_mut(&w.assessment_id) else {
                return Ok(CallbackOutcome::Conflict);
            };
            if a.version != c.expected_version {
                return Ok(CallbackOutcome::Conflict);
            }
            a.status = c.status;
            a.status_label = c.status_label.clone();
            a.update_seq += 1;
            a.last_update_ms = c.update_ms;
            bump(a, c.now_ms);
            let seq = a.update_seq;
            s.outbox.entry(w.assessment_id).or_default().insert(
                seq,
                OutboxUpdate {
                    assessment_id: w.assessment_id,
                    seq,
                    body: c.update_body.clone(),
                    delivered: false,
                    attempts: 0,
                    lease_until_ms: 0,
                    last_error: None,
                },
            );
        }
        s.webhooks.insert(marker);
        Ok(CallbackOutcome::Applied)
    }

    async fn pending_updates(&self, id: AssessmentId) -> StoreResult<Vec<OutboxUpdate>> {
        let s = self.lock()?;
        Ok(s.outbox
            .get(&id)
            .map(|m| m.values().filter(|u| !u.delivered).cloned().collect())
            .unwrap_or_default())
    }

    async fn claim_update(
        &self,
        id: AssessmentId,
        seq: u64,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<bool> {
        let mut s = self.lock()?;
        match s.outbox.get_mut(&id).and_then(|m| m.get_mut(&seq)) {
            Some(u) if !u.delivered && u.lease_until_ms <= now_ms => {
                u.lease_until_ms = until_ms;
                u.attempts += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn mark_update_delivered(
        &self,
        id: AssessmentId,
        seq: u64,
        _now_ms: i64,
    ) -> StoreResult<()> {
        let mut s = self.lock()?;
        if let Some(u) = s.outbox.get_mut(&id).and_then(|m| m.get_mut(&seq)) {
            u.delivered = true;
            u.lease_until_ms = 0;
            u.last_error = None;
        }
        Ok(())
    }

    async fn release_update(&self, id: AssessmentId, seq: u64, error: &str) -> StoreResult<()> {
        let mut s = self.lock()?;
        if let Some(u) = s.outbox.get_mut(&id).and_then(|m| m.get_mut(&seq)) {
            u.lease_until_ms = 0;
            u.last_error = Some(error.to_owned());
        }
        Ok(())
    }
}
