//! Adapters of the store ports (`crate::ports`): DynamoDB for deployments, memory for the local hub
//! and tests, with the same semantics (one conformance suite in `tests/` runs against both).

pub mod dynamodb;
pub mod memory;

pub use dynamodb::DynamoDbStore;
pub use memory::MemoryStore;
