//! DynamoDB adapter (placeholder until implemented).

use async_trait::async_trait;

use super::{
    CallbackOutcome, CallbackWrite, CreateOutcome, NewAssessment, Store, StoreError, StoreResult,
};
use crate::domain::{
    Assessment, AssessmentId, OutboxUpdate, Tenant, TenantId, TokenHash, Vendor, VendorId,
};

#[derive(Clone)]
pub struct DynamoDbStore {
    _client: aws_sdk_dynamodb::Client,
    _table: String,
}

impl DynamoDbStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            _client: client,
            _table: table.into(),
        }
    }
}

fn todo<T>() -> StoreResult<T> {
    Err(StoreError::Unavailable("not implemented".into()))
}

#[async_trait]
impl Store for DynamoDbStore {
    async fn put_tenant(&self, _: &Tenant, _: &TokenHash) -> StoreResult<()> {
        todo()
    }
    async fn tenant_by_token(&self, _: &TokenHash) -> StoreResult<Option<Tenant>> {
        todo()
    }
    async fn tenant(&self, _: &TenantId) -> StoreResult<Option<Tenant>> {
        todo()
    }
    async fn put_vendor(&self, _: &Vendor) -> StoreResult<()> {
        todo()
    }
    async fn vendor(&self, _: &VendorId) -> StoreResult<Option<Vendor>> {
        todo()
    }
    async fn create_assessment(&self, _: &NewAssessment) -> StoreResult<CreateOutcome> {
        todo()
    }
    async fn assessment(&self, _: AssessmentId) -> StoreResult<Option<Assessment>> {
        todo()
    }
    async fn order_body(&self, _: AssessmentId) -> StoreResult<Option<String>> {
        todo()
    }
    async fn claim_order(&self, _: AssessmentId, _: i64, _: i64) -> StoreResult<bool> {
        todo()
    }
    async fn record_order_accepted(
        &self,
        _: AssessmentId,
        _: Option<&str>,
        _: i64,
    ) -> StoreResult<()> {
        todo()
    }
    async fn record_order_rejected(&self, _: AssessmentId, _: &str, _: i64) -> StoreResult<bool> {
        todo()
    }
    async fn release_order(&self, _: AssessmentId) -> StoreResult<()> {
        todo()
    }
    async fn record_cancelled(&self, _: AssessmentId, _: i64) -> StoreResult<bool> {
        todo()
    }
    async fn apply_callback(&self, _: &CallbackWrite) -> StoreResult<CallbackOutcome> {
        todo()
    }
    async fn pending_updates(&self, _: AssessmentId) -> StoreResult<Vec<OutboxUpdate>> {
        todo()
    }
    async fn claim_update(&self, _: AssessmentId, _: u64, _: i64, _: i64) -> StoreResult<bool> {
        todo()
    }
    async fn mark_update_delivered(&self, _: AssessmentId, _: u64, _: i64) -> StoreResult<()> {
        todo()
    }
    async fn release_update(&self, _: AssessmentId, _: u64, _: &str) -> StoreResult<()> {
        todo()
    }
}
