//! The local hub: the whole hub on loopback for development, demos and tests. No AWS, no Docker,
//! no Python unless a DynamoDB table is named.

pub mod ashby_files;
pub mod ashby_standin;
pub mod config;
pub mod greenhouse_schemas;
pub mod greenhouse_standin;
pub mod openapi;
pub mod sandbox;
pub mod server;
