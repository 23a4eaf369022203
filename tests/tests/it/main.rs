//! The integration and end-to-end tests: one test binary, modules by subject.
#![allow(clippy::unwrap_used)]

mod secrets_manager;
mod store_conformance;
