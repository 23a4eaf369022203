//! The integration and end-to-end tests: one test binary, modules by subject.
#![allow(clippy::unwrap_used)]

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
