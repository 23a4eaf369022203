//! The integration and end-to-end tests: one test binary, modules by subject.
#![allow(clippy::unwrap_used)]

mod helpers;
mod lambda_e2e;
mod local_hub;
mod scenarios;
mod secrets_manager;
mod store_conformance;
