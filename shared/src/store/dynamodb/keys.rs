//! The table's keys: how each item's `pk`/`sk` and its `due`-index sort key are spelled, and read
//! back. Numbers in sort keys are zero-padded to 20 digits, so that the string order DynamoDB
//! sorts by is the numeric order; user-supplied text never reaches a key unhashed.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::domain::{AssessmentId, TenantId, TokenHash, VendorId};
use crate::ports::StartKey;

/// An item, or a key, as the SDK carries it.
pub(super) type Item = HashMap<String, AttributeValue>;

/// The sparse index of deliveries not yet delivered, and its two partitions.
pub(super) const DUE_INDEX: &str = "due";
pub(super) const DUE: &str = "DUE";
pub(super) const STUCK: &str = "STUCK";

/// The sort-key prefix of delivery items.
pub(super) const DELIVERY_PREFIX: &str = "DELIVERY#";

const TENANT: &str = "TENANT";
const TOKEN: &str = "TOKEN";
const VENDOR: &str = "VENDOR";
const ASSESSMENT: &str = "ASSESSMENT";
const START: &str = "START";
const WEBHOOK: &str = "WEBHOOK";
const CONNECT: &str = "CONNECT";
const LIMIT: &str = "LIMIT";

/// The primary key of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    fn new(pk: String, sk: &str) -> Self {
        Self {
            pk,
            sk: sk.to_owned(),
        }
    }

    /// The key as the `Key` of a request.
    pub fn item(&self) -> Item {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(self.pk.clone())),
            ("sk".to_owned(), AttributeValue::S(self.sk.clone())),
        ])
    }
}

pub(super) fn tenant(id: &TenantId) -> Key {
    Key::new(format!("{TENANT}#{id}"), TENANT)
}

/// The tenant a tenant item's `pk` names.
pub(super) fn tenant_of(pk: &str) -> Option<TenantId> {
    TenantId::parse(pk.strip_prefix("TENANT#")?).ok()
}

/// The sort key every tenant item has (listing tenants filters on it).
pub(super) const TENANT_SK: &str = TENANT;

pub(super) fn token(token: &TokenHash) -> Key {
    Key::new(format!("{TOKEN}#{}", token.to_hex()), TOKEN)
}

/// A connect link, by the hash of its code.
pub(super) fn invite(hash: &TokenHash) -> Key {
    Key::new(format!("{CONNECT}#{}", hash.to_hex()), CONNECT)
}

/// The link an invite item's `pk` names.
pub(super) fn invite_of(pk: &str) -> Option<TokenHash> {
    TokenHash::from_hex(pk.strip_prefix("CONNECT#")?)
}

/// The sort key every invite item has (listing a tenant's links filters on it).
pub(super) const INVITE_SK: &str = CONNECT;

/// A counter of failed attempts; `key` is the caller's (scope and window), hashed so that no
/// address or code reaches a key.
pub(super) fn limit(key: &str) -> Key {
    Key::new(
        format!("{LIMIT}#{}", hex::encode(Sha256::digest(key.as_bytes()))),
        LIMIT,
    )
}

pub(super) fn vendor(id: &VendorId) -> Key {
    Key::new(format!("{VENDOR}#{id}"), VENDOR)
}

/// The vendor a vendor item's `pk` names.
pub(super) fn vendor_of(pk: &str) -> Option<VendorId> {
    VendorId::parse(pk.strip_prefix("VENDOR#")?).ok()
}

/// The sort key every vendor item has (listing vendors filters on it).
pub(super) const VENDOR_SK: &str = VENDOR;

/// The partition of an assessment: the assessment item and its deliveries.
pub(super) fn assessment_pk(id: AssessmentId) -> String {
    format!("{ASSESSMENT}#{id}")
}

/// The assessment an assessment partition's `pk` names.
pub(super) fn assessment_of(pk: &str) -> Option<AssessmentId> {
    AssessmentId::parse(pk.strip_prefix("ASSESSMENT#")?).ok()
}

pub(super) fn assessment(id: AssessmentId) -> Key {
    Key::new(assessment_pk(id), ASSESSMENT)
}

/// Zero-padded so that the string order of sort keys is the numeric order of sequence numbers.
pub(super) fn delivery(id: AssessmentId, seq: u64) -> Key {
    Key::new(assessment_pk(id), &format!("{DELIVERY_PREFIX}{seq:020}"))
}

/// The sequence number a delivery item's `sk` names.
pub(super) fn seq_of(sk: &str) -> Option<u64> {
    sk.strip_prefix(DELIVERY_PREFIX)?.parse().ok()
}

/// The application id is Ashby's free-form string: hashed so that no character in it can run into
/// the `#` separators or the key-size limit.
pub(super) fn start(k: &StartKey) -> Key {
    let application = hex::encode(Sha256::digest(k.application_id.as_bytes()));
    Key::new(
        format!(
            "{START}#{}#{}#{application}",
            k.tenant_id, k.assessment_type_id
        ),
        START,
    )
}

/// Vendor ids are slugs without `#`, so the vendor part cannot bleed into the webhook id.
pub(super) fn webhook(vendor: &VendorId, webhook_id: &str) -> Key {
    Key::new(format!("{WEBHOOK}#{vendor}#{webhook_id}"), WEBHOOK)
}

/// A delivery's sort key in the `due` index: `<time>#<assessment uuid>#<seq>`, time and seq
/// zero-padded, so that entries sort by time (the next attempt under `DUE`, the creation under
/// `STUCK`) and each one names its delivery.
pub(super) fn index_sk(at: Timestamp, id: AssessmentId, seq: u64) -> String {
    format!("{:020}#{id}#{seq:020}", at.as_ms().max(0))
}

/// The upper bound of a `due` query that takes in every entry of `now`: `~` sorts after every
/// character of a uuid.
pub(super) fn index_sk_upto(now: Timestamp) -> String {
    format!("{:020}#~", now.as_ms().max(0))
}

/// The time, assessment and sequence number an index sort key names.
pub(super) fn parse_index_sk(v: &str) -> Option<(Timestamp, AssessmentId, u64)> {
    let mut parts = v.split('#');
    let at = Timestamp::from_ms(parts.next()?.parse().ok()?);
    let id = AssessmentId::parse(parts.next()?).ok()?;
    let seq = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((at, id, seq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PackageRef;

    #[test]
    fn delivery_sort_keys_sort_numerically() {
        let id = AssessmentId::new();
        let sk = |seq| delivery(id, seq).sk;
        assert!(sk(9) < sk(10));
        assert!(sk(99) < sk(100));
        assert!(sk(u64::MAX - 1) < sk(u64::MAX));
        assert_eq!(sk(7), "DELIVERY#00000000000000000007");
        assert_eq!(seq_of(&sk(7)), Some(7));
        assert_eq!(assessment_of(&delivery(id, 7).pk), Some(id));
    }

    #[test]
    fn due_index_sort_keys_sort_by_time_and_name_their_delivery() {
        let (a, b) = (AssessmentId::new(), AssessmentId::new());
        let t = Timestamp::from_ms;
        assert!(index_sk(t(9), b, 1) < index_sk(t(10), a, 1));
        assert!(index_sk(t(10), a, 1) < index_sk_upto(t(10)));
        assert!(index_sk(t(11), a, 1) > index_sk_upto(t(10)));
        assert_eq!(
            parse_index_sk(&index_sk(t(1_700), a, 12)),
            Some((t(1_700), a, 12))
        );
        assert_eq!(parse_index_sk(&format!("{}#x", index_sk(t(1), a, 1))), None);
    }

    #[test]
    fn start_keys_hash_the_application_id() {
        let package = PackageRef::parse("acme/basic").expect("valid ref");
        let k = |application_id: &str| StartKey {
            tenant_id: TenantId::parse("t1").expect("valid id"),
            application_id: application_id.into(),
            assessment_type_id: package.type_id(),
        };
        let odd = start(&k("a#b/ünï")).pk;
        assert!(!odd.contains("ünï") && odd.matches('#').count() == 3);
        assert_ne!(odd, start(&k("a#b/üni")).pk);
        assert_eq!(odd, start(&k("a#b/ünï")).pk);
    }
}
