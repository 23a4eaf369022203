//! The assessment-partner hub between Ashby and background-check / assessment vendors.
//! Shared by the Lambda functions, the local hub and the tests.

pub mod app;
pub mod ats;
pub mod clock;
pub mod config;
pub mod connect;
pub mod domain;
pub mod error;
pub mod handlers;
pub mod json;
pub mod lambda;
pub mod metrics;
pub mod ports;
pub mod retry;
pub mod secrets;
pub mod store;
pub mod telemetry;
pub mod transport;
pub mod usecases;
pub mod vendors;
pub mod waits;

pub use app::App;
pub use config::Config;
