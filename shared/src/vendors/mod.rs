//! The vendor protocol: signed orders and cancels out, signed result callbacks in. Both directions
//! follow Standard Webhooks with the vendor's `whsec_` secret. See `docs/vendor-protocol.md`.

pub mod callback;
pub mod client;
pub mod protocol;
pub mod url_policy;

pub use callback::{Callback, CallbackError, VerifiedPayload, parse_callback, verify_signature};
pub use client::{VendorClient, VendorError, VendorReply};
pub use protocol::*;
