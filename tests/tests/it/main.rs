//! The integration and end-to-end tests: one test binary, modules by subject.
// Test code throughout (this crate is the tests' workspace member): a failed unwrap or expect
// is a failed test, and expect's message says which step failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ashby_extras;
mod connect;
mod greenhouse;
mod helpers;
mod hostile;
mod hubctl;
mod iam;
mod lambda_e2e;
mod load;
mod local_hub;
mod scenarios;
mod secrets_manager;
mod store_conformance;
mod transport;
