//! Identifiers parsed at the edge. A value of one of these types is valid by construction: slugs
//! are short, lowercase and safe in a URL path or a DynamoDB key; ids issued by the hub are UUIDs.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why an identifier was refused; the message is safe to show to the caller.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct InvalidId(pub String);

pub(crate) fn parse_slug(kind: &str, s: &str) -> Result<String, InvalidId> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && s.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(s.to_owned())
    } else {
        Err(InvalidId(format!(
            "{kind} must be 1-64 characters of a-z, 0-9, '-' or '_', starting with a letter or digit"
        )))
    }
}

macro_rules! slug {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                parse_slug($kind, s).map(Self)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, InvalidId> {
                Self::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

pub(crate) use slug;

slug!(
    /// One Ashby customer account.
    TenantId,
    "tenant id"
);
slug!(
    /// A background-check or assessment provider; also the last segment of its callback URL.
    VendorId,
    "vendor id"
);
slug!(
    /// One orderable product of a vendor.
    PackageId,
    "package id"
);

/// The hub's id of one assessment; Ashby and the vendor both know it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AssessmentId(Uuid);

impl AssessmentId {
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        Uuid::try_parse(s)
            .map(Self)
            .map_err(|_| InvalidId("assessment_id must be a UUID".into()))
    }
}

impl Default for AssessmentId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for AssessmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// Namespace of assessment type ids. Fixed forever: changing it would change every id that Ashby
/// has stored in its customers' interview plans.
const ASSESSMENT_TYPE_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_4b0e_9a52_4d53_8e1f_2a77_c0de_a5b1);

/// What Ashby calls `assessment_type_id`: one vendor package, the same UUID on every deployment.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AssessmentTypeId(Uuid);

impl AssessmentTypeId {
    pub fn of(package: &PackageRef) -> Self {
        Self(Uuid::new_v5(
            &ASSESSMENT_TYPE_NAMESPACE,
            package.to_string().as_bytes(),
        ))
    }
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        Uuid::try_parse(s)
            .map(Self)
            .map_err(|_| InvalidId("assessment_type_id must be a UUID".into()))
    }
}

impl fmt::Display for AssessmentTypeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// `vendor/package`: how a tenant names a package it has enabled.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PackageRef {
    pub vendor: VendorId,
    pub package: PackageId,
}

impl PackageRef {
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        let (v, p) = s
            .split_once('/')
            .ok_or_else(|| InvalidId(format!("package reference {s:?} must be vendor/package")))?;
        Ok(Self {
            vendor: VendorId::parse(v)?,
            package: PackageId::parse(p)?,
        })
    }
    pub fn type_id(&self) -> AssessmentTypeId {
        AssessmentTypeId::of(self)
    }
}

impl TryFrom<String> for PackageRef {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, InvalidId> {
        Self::parse(&s)
    }
}
impl From<PackageRef> for String {
    fn from(v: PackageRef) -> String {
        v.to_string()
    }
}
impl fmt::Display for PackageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.vendor, self.package)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_refuse_traversal_case_and_length() {
        for bad in ["", "../x", "a/b", "A", "-a", "a b", "é", &"a".repeat(65)] {
            assert!(VendorId::parse(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["acme", "acme-checks", "a_1", "9x"] {
            assert!(VendorId::parse(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn assessment_type_id_is_stable_for_a_package() {
        let r = PackageRef::parse("acme-checks/criminal-basic").expect("valid ref");
        // Pinned: this value is stored in customers' Ashby interview plans and must never change.
        // (Also computed independently: Python's uuid.uuid5 with the same namespace.)
        assert_eq!(
            r.type_id().to_string(),
            "cb707a19-86d3-5ff9-af15-71e74ccf01c6"
        );
        assert_ne!(
            r.type_id(),
            PackageRef::parse("acme-checks/criminal-plus")
                .expect("valid ref")
                .type_id()
        );
    }

    #[test]
    fn package_ref_needs_both_halves() {
        assert!(PackageRef::parse("acme").is_err());
        assert!(PackageRef::parse("acme/").is_err());
        assert!(PackageRef::parse("acme/x/y").is_err());
    }
}
