//! The table itself, for the tests and the local hub (deployments get it from the SAM template):
//! creating it, and giving a table made before the `due` index existed that index. Every step
//! waits until DynamoDB reports the table and the index ACTIVE, since a table or index still
//! being created refuses writes, TTL changes and index updates.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};

use super::DynamoDbStore;
use super::keys::DUE_INDEX;
use super::request::{built, unavailable};
use crate::ports::StoreError;

/// How long a new table may take to become active.
const TABLE_WAIT: Duration = Duration::from_secs(120);
/// How often, and how many times, the index migration looks whether the index is active (on an
/// empty table DynamoDB builds it in seconds to minutes).
const INDEX_POLL: Duration = Duration::from_secs(2);
const INDEX_POLLS: u32 = 150;

impl DynamoDbStore {
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
        // TTL and the index can only be changed once the table is active.
        client
            .wait_until_table_exists()
            .table_name(name)
            .wait(TABLE_WAIT)
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

    /// Adds the `due` index to a table made before it existed, and waits until the index and the
    /// table are active. The SDK has no waiter for an index, so this polls DescribeTable.
    async fn ensure_due_index(client: &Client, name: &str) -> Result<(), StoreError> {
        let mut added = false;
        for _ in 0..INDEX_POLLS {
            let described = client
                .describe_table()
                .table_name(name)
                .send()
                .await
                .map_err(|e| unavailable("DescribeTable", &e))?;
            let table = described.table();
            let table_active = table.and_then(|t| t.table_status()) == Some(&TableStatus::Active);
            let index = table
                .map(|t| t.global_secondary_indexes())
                .unwrap_or_default()
                .iter()
                .find(|i| i.index_name() == Some(DUE_INDEX));
            match index.map(|i| i.index_status()) {
                // An emulator may leave the status out: it has nothing to build.
                Some(Some(IndexStatus::Active) | None) if table_active => return Ok(()),
                None if !added && table_active => {
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
                // Being created, or the table is busy: look again.
                _ => {}
            }
            tokio::time::sleep(INDEX_POLL).await;
        }
        Err(StoreError::Unavailable(
            "UpdateTable: the due index did not become active".into(),
        ))
    }
}

fn string_attribute(name: &str) -> Result<AttributeDefinition, StoreError> {
    built(
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build(),
    )
}

fn key_element(name: &str, key_type: KeyType) -> Result<KeySchemaElement, StoreError> {
    built(
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build(),
    )
}

fn due_index_attributes() -> Result<Vec<AttributeDefinition>, StoreError> {
    Ok(vec![
        string_attribute("gsi1pk")?,
        string_attribute("gsi1sk")?,
    ])
}

fn due_index_keys() -> Result<Vec<KeySchemaElement>, StoreError> {
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
