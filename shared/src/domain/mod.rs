//! Pure domain: identifiers, records and the assessment lifecycle. No I/O here.

pub mod connect;
pub mod fields;
pub mod ids;
pub mod lifecycle;
pub mod options;
pub mod records;
pub mod token;

pub use connect::{
    AtsCall, Connection, ConnectionState, DeliveryHealth, DeliveryReport, Invite, InviteDead,
    KeyCheck, TenantHealth,
};
pub use fields::{Field, FieldKind, FieldValue};
pub use ids::*;
pub use lifecycle::*;
pub use options::{OptionId, OptionKind, OptionValues, PackageOption, PossibleValue};
pub use records::*;
pub use token::*;
