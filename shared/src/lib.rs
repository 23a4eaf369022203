//! The assessment-partner hub between Ashby and background-check / assessment vendors.
//! Shared by the four Lambda functions, the local hub and the tests.

pub mod app;
pub mod ashby;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod handlers;
pub mod json;
pub mod lambda;
pub mod metrics;
pub mod secrets;
pub mod store;
pub mod telemetry;
pub mod transport;
pub mod vendor;
pub mod waits;

pub use app::App;
pub use config::Config;
