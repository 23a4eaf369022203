//! Pins the stored format: deployments hold items written by earlier versions, so each item kind
//! is checked against a literal item spelled the way the hand-written codecs before `serde_dynamo`
//! wrote it (same attribute names, same DynamoDB types, optional attributes absent, not NULL):
//! it decodes to the same record, and encoding that record gives exactly that item again.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use url::Url;

use super::items::{
    AssessmentItem, DeliveryItem, IndexEntry, StartKeyItem, TenantItem, TokenItem, VendorItem,
    WebhookItem,
};
use super::keys::Item;
use crate::clock::Timestamp;
use crate::domain::{
    Assessment, AssessmentId, Delivery, DeliveryKind, DeliveryState, NewDelivery, Package,
    PackageId, PackageRef, Status, Tenant, TenantId, TokenHash, Vendor, VendorId,
};
use crate::ports::{StartKey, StoreError, TenantToken};

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: &str) -> AttributeValue {
    AttributeValue::N(v.to_owned())
}

fn item<const N: usize>(attributes: [(&str, AttributeValue); N]) -> Item {
    attributes
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

const ID: &str = "0b6f7c1e-8a3d-4f0e-9c2b-5d4e3f2a1b0c";

fn id() -> AssessmentId {
    AssessmentId::parse(ID).expect("valid id")
}

fn hash(token: &str) -> TokenHash {
    TokenHash::of(&secrecy::SecretString::from(token))
}

fn tenant() -> Tenant {
    Tenant {
        id: TenantId::parse("t1").expect("valid id"),
        name: "T".into(),
        ats: crate::domain::Ats::Ashby,
        ashby_base_url: Url::parse("https://api.ashbyhq.com").expect("valid url"),
        packages: vec![PackageRef::parse("acme/basic").expect("valid ref")],
        disabled: true,
    }
}

fn assessment() -> Assessment {
    let package = PackageRef::parse("acme/basic").expect("valid ref");
    Assessment {
        id: id(),
        tenant_id: TenantId::parse("t1").expect("valid id"),
        vendor_id: package.vendor.clone(),
        package_id: package.package.clone(),
        assessment_type_id: package.type_id(),
        application_id: "app-1".into(),
        status: Status::InProgress,
        status_label: Some("Waiting for candidate".into()),
        vendor_reference: None,
        rejection_message: Some("no".into()),
        created_at_ms: Timestamp::from_ms(1),
        updated_at_ms: Timestamp::from_ms(2),
        last_update_ms: Timestamp::from_ms(3),
        update_seq: 4,
        version: 6,
        candidate_id: None,
        ats: crate::domain::Ats::Ashby,
        ats_url: None,
        summary: None,
        ats_errors: 0,
        last_ats_error: None,
    }
}

/// The assessment above as the old codec wrote it.
fn old_assessment_item() -> Item {
    item([
        ("pk", s(&format!("ASSESSMENT#{ID}"))),
        ("sk", s("ASSESSMENT")),
        ("id", s(ID)),
        ("tenant_id", s("t1")),
        ("vendor_id", s("acme")),
        ("package_id", s("basic")),
        (
            "assessment_type_id",
            s("9dd9eb51-7c39-56a2-8cbc-2ca4cbe09a30"),
        ),
        ("application_id", s("app-1")),
        ("status", s("in_progress")),
        ("status_label", s("Waiting for candidate")),
        ("rejection_message", s("no")),
        ("created_at_ms", n("1")),
        ("updated_at_ms", n("2")),
        ("last_update_ms", n("3")),
        ("update_seq", n("4")),
        ("version", n("6")),
    ])
}

#[test]
fn an_assessment_item_of_the_old_format_decodes_and_is_written_the_same() {
    let old = old_assessment_item();
    assert_eq!(AssessmentItem::decode(old.clone()), Ok(assessment()));
    assert_eq!(AssessmentItem::encode(&assessment()), Ok(old));
    // Every status is stored under the name the old codec gave it.
    for status in Status::ALL {
        let mut a = assessment();
        a.status = status;
        let encoded = AssessmentItem::encode(&a).expect("encodes");
        assert_eq!(encoded.get("status"), Some(&s(status.as_str())));
        assert_eq!(AssessmentItem::decode(encoded), Ok(a));
    }
}

#[test]
fn an_optional_attribute_is_absent_when_none_and_null_reads_as_none() {
    let mut a = assessment();
    a.status_label = None;
    a.rejection_message = None;
    let encoded = AssessmentItem::encode(&a).expect("encodes");
    for absent in ["status_label", "vendor_reference", "rejection_message"] {
        assert!(!encoded.contains_key(absent), "{absent}");
    }
    let mut nulls = encoded.clone();
    nulls.insert("status_label".into(), AttributeValue::Null(true));
    assert_eq!(AssessmentItem::decode(nulls), Ok(a));
}

#[test]
fn a_tenant_item_of_the_old_format_decodes_and_is_written_the_same() {
    let (a, b) = (hash("tok"), hash("tok2"));
    let old = item([
        ("pk", s("TENANT#t1")),
        ("sk", s("TENANT")),
        ("name", s("T")),
        ("ashby_base_url", s("https://api.ashbyhq.com/")),
        ("packages", AttributeValue::L(vec![s("acme/basic")])),
        ("disabled", AttributeValue::Bool(true)),
        (
            "tokens",
            AttributeValue::M(HashMap::from([(b.to_hex(), n("2")), (a.to_hex(), n("1"))])),
        ),
        ("rev", s("r1")),
    ]);
    let tokens = vec![
        TenantToken {
            hash: a,
            added_at_ms: Timestamp::from_ms(1),
        },
        TenantToken {
            hash: b,
            added_at_ms: Timestamp::from_ms(2),
        },
    ];
    let stored = TenantItem::decode(old.clone()).expect("decodes");
    assert_eq!(stored.tenant, tenant());
    assert_eq!(stored.rev.as_deref(), Some("r1"));
    assert_eq!(stored.tokens(), Ok(tokens.clone()));
    assert_eq!(TenantItem::encode(&tenant(), &tokens, "r1".into()), Ok(old));
}

#[test]
fn empty_lists_and_maps_are_written_as_empty_l_and_m() {
    let mut bare = tenant();
    bare.packages.clear();
    let encoded = TenantItem::encode(&bare, &[], "r1".into()).expect("encodes");
    assert_eq!(encoded.get("packages"), Some(&AttributeValue::L(vec![])));
    assert_eq!(
        encoded.get("tokens"),
        Some(&AttributeValue::M(HashMap::new()))
    );
    let stored = TenantItem::decode(encoded).expect("decodes");
    assert_eq!(stored.tenant, bare);
    assert_eq!(stored.tokens(), Ok(vec![]));
}

#[test]
fn a_tenant_item_from_before_several_tokens_decodes_with_its_one_token() {
    let old = item([
        ("pk", s("TENANT#t1")),
        ("sk", s("TENANT")),
        ("name", s("T")),
        ("ashby_base_url", s("https://api.ashbyhq.com")),
        ("packages", AttributeValue::L(vec![s("acme/basic")])),
        ("disabled", AttributeValue::Bool(true)),
        ("token_hash", s(&hash("tok").to_hex())),
    ]);
    let stored = TenantItem::decode(old).expect("decodes");
    assert_eq!(stored.tenant, tenant());
    assert_eq!(stored.rev, None);
    assert_eq!(
        stored.tokens(),
        Ok(vec![TenantToken {
            hash: hash("tok"),
            added_at_ms: Timestamp::EPOCH,
        }])
    );
}

#[test]
fn a_token_a_start_key_and_a_webhook_marker_of_the_old_format_decode_and_are_written_the_same() {
    let token = hash("tok");
    let t1 = TenantId::parse("t1").expect("valid id");
    let old_token = item([
        ("pk", s(&format!("TOKEN#{}", token.to_hex()))),
        ("sk", s("TOKEN")),
        ("tenant_id", s("t1")),
    ]);
    assert_eq!(TokenItem::decode(old_token.clone()), Ok(t1.clone()));
    assert_eq!(TokenItem::encode(&token, &t1), Ok(old_token));

    let package = PackageRef::parse("acme/basic").expect("valid ref");
    let key = StartKey {
        tenant_id: t1,
        application_id: "app-1".into(),
        assessment_type_id: package.type_id(),
    };
    // sha256("app-1"); the type id is the v5 UUID of "acme/basic" in the hub's namespace.
    let app = "5eb7e725e6bac43f2a906437aa7be080081de786a7d12f7b9649be47b69d6ca0";
    assert_eq!(
        package.type_id().to_string(),
        "9dd9eb51-7c39-56a2-8cbc-2ca4cbe09a30"
    );
    let old_start = item([
        (
            "pk",
            s(&format!(
                "START#t1#9dd9eb51-7c39-56a2-8cbc-2ca4cbe09a30#{app}"
            )),
        ),
        ("sk", s("START")),
        ("assessment_id", s(ID)),
    ]);
    assert_eq!(StartKeyItem::decode(old_start.clone()), Ok(id()));
    assert_eq!(StartKeyItem::encode(&key, id()), Ok(old_start));

    let acme = VendorId::parse("acme").expect("valid id");
    let old_marker = item([
        ("pk", s("WEBHOOK#acme#msg_1")),
        ("sk", s("WEBHOOK")),
        ("expires_at", n("1700000000")),
    ]);
    assert_eq!(
        WebhookItem::encode(&acme, "msg_1", 1_700_000_000),
        Ok(old_marker)
    );
}

#[test]
fn a_vendor_item_of_the_old_format_decodes_and_is_written_the_same() {
    let vendor = Vendor {
        id: VendorId::parse("acme").expect("valid id"),
        name: "Acme".into(),
        order_url: Url::parse("https://acme.example/orders").expect("valid url"),
        packages: vec![Package {
            id: PackageId::parse("basic").expect("valid id"),
            name: "Basic".into(),
            description: String::new(),
            options: vec![],
        }],
    };
    let old = item([
        ("pk", s("VENDOR#acme")),
        ("sk", s("VENDOR")),
        ("name", s("Acme")),
        ("order_url", s("https://acme.example/orders")),
        (
            "packages",
            AttributeValue::L(vec![AttributeValue::M(item([
                ("id", s("basic")),
                ("name", s("Basic")),
                ("description", s("")),
            ]))]),
        ),
        ("rev", s("r1")),
    ]);
    assert_eq!(
        VendorItem::decode(old.clone()),
        Ok((vendor.clone(), Some("r1".into())))
    );
    assert_eq!(VendorItem::encode(&vendor, "r1".into()), Ok(old.clone()));
    // A package without a description (or a NULL one) reads as an empty one.
    let mut bare = old;
    bare.insert(
        "packages".into(),
        AttributeValue::L(vec![AttributeValue::M(item([
            ("id", s("basic")),
            ("name", s("Basic")),
            ("description", AttributeValue::Null(true)),
        ]))]),
    );
    bare.remove("rev");
    assert_eq!(VendorItem::decode(bare), Ok((vendor, None)));
}

fn order() -> NewDelivery {
    NewDelivery {
        kind: DeliveryKind::VendorOrder,
        body: r#"{"candidate":{}}"#.into(),
        next_attempt_ms: Timestamp::from_ms(20),
        leased_until_ms: Timestamp::from_ms(30),
        expires_at_s: Some(40),
    }
}

/// Delivery 7 of the assessment, as the old codec wrote it when it was created.
fn old_delivery_item() -> Item {
    item([
        ("pk", s(&format!("ASSESSMENT#{ID}"))),
        ("sk", s("DELIVERY#00000000000000000007")),
        ("kind", s("vendor_order")),
        ("body", s(r#"{"candidate":{}}"#)),
        ("state", s("pending")),
        ("attempts", n("0")),
        ("created_ms", n("10")),
        ("next_attempt_ms", n("20")),
        ("lease_until_ms", n("30")),
        ("gsi1pk", s("DUE")),
        (
            "gsi1sk",
            s(&format!("00000000000000000020#{ID}#00000000000000000007")),
        ),
        ("expires_at", n("40")),
    ])
}

#[test]
fn a_delivery_item_of_the_old_format_decodes_in_every_state_and_is_written_the_same() {
    let mut old = old_delivery_item();
    assert_eq!(
        DeliveryItem::encode(id(), 7, &order(), Timestamp::from_ms(10)),
        Ok(old.clone())
    );
    let mut update = order();
    update.kind = DeliveryKind::AtsUpdate;
    update.expires_at_s = None;
    let encoded = DeliveryItem::encode(id(), 7, &update, Timestamp::from_ms(10)).expect("encodes");
    assert_eq!(encoded.get("kind"), Some(&s("ashby_update")));
    assert!(!encoded.contains_key("expires_at"));

    let mut want = Delivery {
        assessment_id: id(),
        seq: 7,
        kind: DeliveryKind::VendorOrder,
        body: r#"{"candidate":{}}"#.into(),
        state: DeliveryState::Pending,
        attempts: 0,
        created_ms: Timestamp::from_ms(10),
        next_attempt_ms: Timestamp::from_ms(20),
        lease_until_ms: Timestamp::from_ms(30),
        last_error: None,
    };
    assert_eq!(DeliveryItem::decode(old.clone()), Ok(want.clone()));
    assert_eq!(DeliveryItem::created_ms(old.clone()), Ok(want.created_ms));
    // What the queue's updates leave on it: an error, a state with its reason, no index keys.
    old.insert("last_error".into(), s("HTTP 503"));
    old.insert("attempts".into(), n("3"));
    old.remove("gsi1pk");
    old.remove("gsi1sk");
    want.last_error = Some("HTTP 503".into());
    want.attempts = 3;
    for (name, state) in [
        ("delivered", DeliveryState::Delivered),
        ("parked", DeliveryState::Parked("no key".into())),
        ("dead", DeliveryState::Dead("too old".into())),
    ] {
        old.insert("state".into(), s(name));
        if let Some(reason) = state.reason() {
            old.insert("reason".into(), s(reason));
        }
        want.state = state;
        assert_eq!(DeliveryItem::decode(old.clone()), Ok(want.clone()));
    }
    old.remove("reason");
    assert_eq!(
        DeliveryItem::decode(old),
        Err(StoreError::Corrupt("delivery attribute reason".into()))
    );
}

#[test]
fn a_due_index_entry_names_its_delivery() {
    let entry = item([
        ("pk", s(&format!("ASSESSMENT#{ID}"))),
        ("sk", s("DELIVERY#00000000000000000012")),
        ("gsi1pk", s("DUE")),
        (
            "gsi1sk",
            s(&format!("00000000000000001700#{ID}#00000000000000000012")),
        ),
    ]);
    assert_eq!(
        IndexEntry::decode(entry.clone()),
        Ok((Timestamp::from_ms(1_700), id(), 12))
    );
    let mut bad = entry;
    bad.insert(
        "gsi1sk".into(),
        s(&format!("00000000000000000001#{ID}#00000000000000000001#x")),
    );
    assert_eq!(
        IndexEntry::decode(bad),
        Err(StoreError::Corrupt("due index attribute gsi1sk".into()))
    );
}

#[test]
fn a_bad_attribute_is_reported_as_corrupt_by_name_without_its_value() {
    let corrupt = |name: &str| Err(StoreError::Corrupt(format!("assessment attribute {name}")));
    let mut item = old_assessment_item();
    item.insert("status".into(), s("s3cret-status"));
    assert_eq!(AssessmentItem::decode(item.clone()), corrupt("status"));
    item.insert("status".into(), s("in_progress"));
    item.remove("version");
    assert_eq!(AssessmentItem::decode(item.clone()), corrupt("version"));
    // The wrong type, and a number that is no number, are named the same way.
    item.insert("version".into(), s("6"));
    assert_eq!(AssessmentItem::decode(item.clone()), corrupt("version"));
    item.insert("version".into(), n("s3cret-number"));
    assert_eq!(AssessmentItem::decode(item.clone()), corrupt("version"));
    item.insert("version".into(), n("6"));
    item.insert("tenant_id".into(), s("S3CRET TENANT"));
    assert_eq!(AssessmentItem::decode(item.clone()), corrupt("tenant_id"));
    item.insert("tenant_id".into(), s("t1"));
    assert_eq!(AssessmentItem::decode(item), Ok(assessment()));

    let mut delivery = old_delivery_item();
    delivery.insert("kind".into(), s("fax"));
    assert_eq!(
        DeliveryItem::decode(delivery.clone()),
        Err(StoreError::Corrupt("delivery attribute kind".into()))
    );
    delivery.insert("kind".into(), s("vendor_order"));
    delivery.insert("body".into(), n("1"));
    let err = DeliveryItem::decode(delivery).expect_err("body is a string");
    assert_eq!(err, StoreError::Corrupt("delivery attribute body".into()));

    let mut tenant = item_of_tenant();
    tenant.insert(
        "tokens".into(),
        AttributeValue::M(HashMap::from([("not-hex".to_owned(), n("1"))])),
    );
    assert_eq!(
        TenantItem::decode(tenant).expect("decodes").tokens(),
        Err(StoreError::Corrupt("tenant attribute tokens".into()))
    );
}

fn item_of_tenant() -> Item {
    TenantItem::encode(&tenant(), &[], "r1".into()).expect("encodes")
}

#[test]
fn an_assessment_round_trips_through_its_item() {
    let mut a = assessment();
    a.id = AssessmentId::new();
    a.vendor_reference = Some("ACME-1".into());
    let item = AssessmentItem::encode(&a).expect("encodes");
    assert_eq!(AssessmentItem::decode(item), Ok(a));
}

#[test]
fn a_tenant_and_a_vendor_round_trip_through_their_items() {
    let tokens = [
        TenantToken {
            hash: hash("tok"),
            added_at_ms: Timestamp::from_ms(1),
        },
        TenantToken {
            hash: hash("tok2"),
            added_at_ms: Timestamp::from_ms(2),
        },
    ];
    let item = TenantItem::encode(&tenant(), &tokens, "r".into()).expect("encodes");
    let stored = TenantItem::decode(item).expect("decodes");
    assert_eq!(stored.tenant, tenant());
    assert_eq!(stored.tokens(), Ok(tokens.to_vec()));
    let vendor = Vendor {
        id: VendorId::parse("acme").expect("valid id"),
        name: "Acme".into(),
        order_url: Url::parse("https://acme.example/orders").expect("valid url"),
        packages: vec![Package {
            id: PackageId::parse("basic").expect("valid id"),
            name: "Basic".into(),
            description: "A basic check".into(),
            options: vec![],
        }],
    };
    let item = VendorItem::encode(&vendor, "r".into()).expect("encodes");
    assert_eq!(VendorItem::decode(item), Ok((vendor, Some("r".into()))));
}
