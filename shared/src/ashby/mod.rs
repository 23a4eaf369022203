//! Ashby's side of the contract: the bodies Ashby sends us, the bodies we answer with and send
//! back (`assessment.update`), what a start must hold (`validate`), and the client that delivers
//! those updates.

pub mod client;
pub mod types;
mod validate;

pub use client::{AshbyClient, AshbyError};
pub use types::*;
