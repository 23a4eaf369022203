//! DynamoDB adapter of the store ports: one table keyed by `pk`/`sk`, TTL on `expires_at`, one
//! sparse index (`due`). Every state change is a conditional UpdateItem or one
//! TransactWriteItems, never a read followed by an unconditional write, so concurrent Lambdas get
//! exactly the guarantees `MemoryStore` gives with its mutex. A failed condition is an answer
//! (`false`, `Existing`, `Duplicate`, `Conflict`), never an error. Candidate PII lives only on
//! vendor-order delivery items, which expire on their own TTL.
//!
//! Items (`pk` / `sk`), each mapped by one struct in `items`:
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
//!
//! The modules: `keys` (how keys are spelled), `items` (the item structs), `request` (request
//! primitives, error mapping, the contention retry), `table` (creating the table), and one per
//! port: `registry`, `assessments`, `queue`.

use std::sync::Arc;

use aws_sdk_dynamodb::Client;

use crate::clock::{Clock, SystemClock};

mod assessments;
mod items;
mod keys;
mod queue;
mod registry;
mod request;
mod table;

#[cfg(test)]
mod stored_format;

#[derive(Clone)]
pub struct DynamoDbStore {
    client: Client,
    table: String,
    /// When a token was added; every other time comes from the caller.
    clock: Arc<dyn Clock>,
}

impl DynamoDbStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self::with_clock(client, table, Arc::new(SystemClock))
    }

    pub fn with_clock(client: Client, table: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            table: table.into(),
            clock,
        }
    }
}
