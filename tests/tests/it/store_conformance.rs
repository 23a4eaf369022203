//! One conformance suite for the `Store` trait, written once and run against `MemoryStore` and
//! against `DynamoDbStore` on moto (`store_conformance::memory::…`, `store_conformance::dynamodb::…`).
//! Each test states one clause of the trait's contract; the concurrent ones release ten requests
//! together and count winners.

use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
use hub::domain::{
    Assessment, AssessmentId, Package, PackageId, PackageRef, Status, Tenant, TenantId, TokenHash,
    Vendor, VendorId, generate_trigger_token,
};
use hub::store::{
    CallbackChange, CallbackOutcome, CallbackWrite, CreateOutcome, DynamoDbStore, MemoryStore,
    NewAssessment, StartKey, Store, StoreError,
};
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use url::Url;

type S = Arc<dyn Store>;

/// The request clock. Leases are compared with the `now_ms` the caller passes, so a fixed clock
/// keeps lease tests exact.
const NOW: i64 = 1_700_000_000_000;
const LEASE: i64 = 30_000;
const RACERS: usize = 10;

async fn memory() -> S {
    Arc::new(MemoryStore::new())
}

async fn dynamodb() -> S {
    let (client, table) = hub_tests::aws::fresh_table().await;
    Arc::new(DynamoDbStore::new(client, table))
}

/// Generates `memory::<test>` and `dynamodb::<test>` for every shared test below.
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test(super::memory().await).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test(super::dynamodb().await).await;
                }
            )*
        }
    };
}

conformance!(
    a_tenant_is_found_by_its_token_and_by_its_id,
    an_unknown_token_finds_no_tenant,
    a_disabled_tenant_is_not_found_by_its_token,
    a_replaced_token_no_longer_finds_the_tenant,
    concurrent_token_replacements_leave_exactly_one_working_token,
    a_vendor_is_read_back_with_its_packages_and_can_be_replaced,
    a_created_assessment_is_read_back_with_its_order_body,
    a_second_start_of_a_live_assessment_returns_the_existing_one,
    a_start_after_the_assessment_finished_takes_over_the_start_key,
    starts_for_another_application_type_or_tenant_are_independent,
    two_concurrent_creates_with_the_same_start_key_create_one_assessment,
    concurrent_starts_after_a_finished_assessment_take_it_over_once,
    the_creator_holds_the_order_lease_until_it_expires,
    only_one_of_concurrent_order_claims_wins,
    a_released_order_lease_can_be_claimed_at_once,
    an_accepted_order_is_ordered_with_its_vendor_reference_and_no_lease,
    an_accepted_order_keeps_the_later_status_a_fast_callback_recorded,
    an_accepted_order_can_no_longer_be_claimed_or_rejected,
    a_rejected_order_keeps_the_vendor_message_and_is_final,
    cancelling_a_live_assessment_succeeds_once,
    writes_to_an_unknown_assessment_create_nothing,
    a_callback_changes_the_status_and_queues_the_next_update,
    a_repeated_webhook_id_is_a_duplicate_and_changes_nothing,
    the_same_webhook_id_from_another_vendor_is_not_a_duplicate,
    a_callback_on_a_stale_version_is_a_conflict_and_leaves_no_marker,
    a_callback_for_an_unknown_assessment_is_a_conflict,
    a_callback_without_a_change_records_only_the_marker,
    a_callback_without_a_label_removes_the_previous_label,
    concurrent_callbacks_with_the_same_webhook_id_apply_once,
    concurrent_callbacks_on_the_same_version_apply_once,
    pending_updates_come_oldest_first,
    only_one_of_concurrent_update_claims_wins_and_counts_an_attempt,
    a_claimed_update_is_leased_until_it_expires_or_is_released,
    a_delivered_update_is_no_longer_pending_or_claimable,
    claiming_or_delivering_an_unknown_update_changes_nothing,
);

// --- fixtures ---

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn package() -> PackageRef {
    PackageRef::parse("acme/criminal-basic").unwrap()
}

fn tenant() -> Tenant {
    Tenant {
        id: TenantId::parse(&unique("t")).unwrap(),
        name: "Tenant".into(),
        ashby_base_url: Url::parse("https://api.ashbyhq.com").unwrap(),
        packages: vec![package()],
        disabled: false,
    }
}

fn token() -> TokenHash {
    TokenHash::of(&generate_trigger_token())
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A start as the start handler makes it: `Ordering`, the creator holding the order lease.
fn start(tenant: &TenantId, application_id: &str) -> NewAssessment {
    start_of(tenant, application_id, &package())
}

fn start_of(tenant: &TenantId, application_id: &str, package: &PackageRef) -> NewAssessment {
    let id = AssessmentId::new();
    NewAssessment {
        assessment: Assessment {
            id,
            tenant_id: tenant.clone(),
            vendor_id: package.vendor.clone(),
            package_id: package.package.clone(),
            assessment_type_id: package.type_id(),
            application_id: application_id.into(),
            status: Status::Ordering,
            status_label: None,
            vendor_reference: None,
            rejection_message: None,
            created_at_ms: NOW,
            updated_at_ms: NOW,
            last_update_ms: 0,
            update_seq: 0,
            order_lease_until_ms: NOW + LEASE,
            version: 1,
        },
        start_key: StartKey {
            tenant_id: tenant.clone(),
            application_id: application_id.into(),
            assessment_type_id: package.type_id(),
        },
        order_body: format!(
            r#"{{"assessment_id":"{id}","candidate":{{"email":"ada@example.com"}}}}"#
        ),
        pii_expires_at_s: now_s() + 86_400,
    }
}

/// A created assessment, read back.
async fn created(store: &dyn Store) -> Assessment {
    let new = start(&tenant().id, &unique("app"));
    assert_eq!(
        store.create_assessment(&new).await.unwrap(),
        CreateOutcome::Created
    );
    new.assessment
}

async fn read(store: &dyn Store, id: AssessmentId) -> Assessment {
    store
        .assessment(id)
        .await
        .unwrap()
        .expect("assessment exists")
}

fn vendor() -> VendorId {
    VendorId::parse("acme").unwrap()
}

/// A callback that moves `a` (as read) to `status`, owing Ashby `body`.
fn callback(a: &Assessment, webhook_id: &str, status: Status, body: &str) -> CallbackWrite {
    CallbackWrite {
        vendor_id: vendor(),
        webhook_id: webhook_id.into(),
        marker_expires_at_s: now_s() + 86_400,
        assessment_id: a.id,
        change: Some(CallbackChange {
            expected_version: a.version,
            status,
            status_label: Some(format!("{status:?}")),
            now_ms: NOW + 1_000,
            update_body: body.into(),
            update_ms: NOW + 1_000 + a.update_seq as i64,
        }),
    }
}

/// Applies one callback on the current version and expects it to be applied.
async fn apply(store: &dyn Store, id: AssessmentId, webhook_id: &str, body: &str) {
    let a = read(store, id).await;
    let w = callback(&a, webhook_id, Status::InProgress, body);
    assert_eq!(
        store.apply_callback(&w).await.unwrap(),
        CallbackOutcome::Applied
    );
}

/// Runs `RACERS` requests released together, and returns their results.
async fn race<T, F, Fut>(f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut set = JoinSet::new();
    for i in 0..RACERS {
        let (request, barrier) = (f(i), barrier.clone());
        set.spawn(async move {
            barrier.wait().await;
            request.await
        });
    }
    set.join_all().await
}

fn count<T: PartialEq>(results: &[T], wanted: &T) -> usize {
    results.iter().filter(|r| *r == wanted).count()
}

// --- tenants and vendors ---

async fn a_tenant_is_found_by_its_token_and_by_its_id(store: S) {
    let (t, token) = (tenant(), token());
    store.put_tenant(&t, &token).await.unwrap();
    assert_eq!(
        store.tenant_by_token(&token).await.unwrap(),
        Some(t.clone())
    );
    assert_eq!(store.tenant(&t.id).await.unwrap(), Some(t));
}

async fn an_unknown_token_finds_no_tenant(store: S) {
    store.put_tenant(&tenant(), &token()).await.unwrap();
    assert_eq!(store.tenant_by_token(&token()).await.unwrap(), None);
    assert_eq!(store.tenant(&tenant().id).await.unwrap(), None);
}

async fn a_disabled_tenant_is_not_found_by_its_token(store: S) {
    let (mut t, token) = (tenant(), token());
    t.disabled = true;
    store.put_tenant(&t, &token).await.unwrap();
    assert_eq!(store.tenant_by_token(&token).await.unwrap(), None);
    // Still there for operators, and back as soon as it is enabled again.
    assert_eq!(store.tenant(&t.id).await.unwrap(), Some(t.clone()));
    t.disabled = false;
    store.put_tenant(&t, &token).await.unwrap();
    assert_eq!(store.tenant_by_token(&token).await.unwrap(), Some(t));
}

async fn a_replaced_token_no_longer_finds_the_tenant(store: S) {
    let (mut t, old, new) = (tenant(), token(), token());
    let (other, other_token) = (tenant(), token());
    store.put_tenant(&other, &other_token).await.unwrap();
    store.put_tenant(&t, &old).await.unwrap();
    t.name = "Renamed".into();
    store.put_tenant(&t, &new).await.unwrap();
    assert_eq!(store.tenant_by_token(&old).await.unwrap(), None);
    assert_eq!(store.tenant_by_token(&new).await.unwrap(), Some(t.clone()));
    // Putting it again with the same token keeps that token working.
    store.put_tenant(&t, &new).await.unwrap();
    assert_eq!(store.tenant_by_token(&new).await.unwrap(), Some(t));
    assert_eq!(
        store.tenant_by_token(&other_token).await.unwrap(),
        Some(other)
    );
}

async fn concurrent_token_replacements_leave_exactly_one_working_token(store: S) {
    let t = tenant();
    store.put_tenant(&t, &token()).await.unwrap();
    let tokens: Vec<TokenHash> = (0..RACERS).map(|_| token()).collect();
    let results = race(|i| {
        let (store, t, token) = (store.clone(), t.clone(), tokens[i]);
        async move { store.put_tenant(&t, &token).await }
    })
    .await;
    // Every writer wants to win here, so a store may give up on some of them; the contract only
    // lets it do so with `Unavailable`, having written nothing.
    for r in &results {
        assert!(
            matches!(r, Ok(()) | Err(StoreError::Unavailable(_))),
            "{r:?}"
        );
    }
    let mut working = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        if store.tenant_by_token(token).await.unwrap().is_some() {
            working.push(i);
        }
    }
    assert_eq!(working.len(), 1, "{results:?}");
    assert_eq!(results[working[0]], Ok(()));
}

async fn a_vendor_is_read_back_with_its_packages_and_can_be_replaced(store: S) {
    let mut v = Vendor {
        id: VendorId::parse(&unique("v")).unwrap(),
        name: "Acme Checks".into(),
        order_url: Url::parse("https://acme.example/hub/orders").unwrap(),
        packages: vec![
            Package {
                id: PackageId::parse("criminal-basic").unwrap(),
                name: "Criminal, basic".into(),
                description: "County search".into(),
            },
            Package {
                id: PackageId::parse("criminal-plus").unwrap(),
                name: "Criminal, plus".into(),
                description: String::new(),
            },
        ],
    };
    store.put_vendor(&v).await.unwrap();
    assert_eq!(store.vendor(&v.id).await.unwrap(), Some(v.clone()));
    v.packages.pop();
    v.order_url = Url::parse("https://acme.example/v2/orders").unwrap();
    store.put_vendor(&v).await.unwrap();
    assert_eq!(store.vendor(&v.id).await.unwrap(), Some(v));
    let unknown = VendorId::parse(&unique("v")).unwrap();
    assert_eq!(store.vendor(&unknown).await.unwrap(), None);
}

// --- creating assessments ---

async fn a_created_assessment_is_read_back_with_its_order_body(store: S) {
    let new = start(&tenant().id, "app-1");
    let id = new.assessment.id;
    assert_eq!(
        store.create_assessment(&new).await.unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(store.assessment(id).await.unwrap(), Some(new.assessment));
    assert_eq!(store.order_body(id).await.unwrap(), Some(new.order_body));
    assert_eq!(store.assessment(AssessmentId::new()).await.unwrap(), None);
    assert_eq!(store.order_body(AssessmentId::new()).await.unwrap(), None);
}

async fn a_second_start_of_a_live_assessment_returns_the_existing_one(store: S) {
    let t = tenant();
    let (first, second) = (start(&t.id, "app-1"), start(&t.id, "app-1"));
    store.create_assessment(&first).await.unwrap();
    assert_eq!(
        store.create_assessment(&second).await.unwrap(),
        CreateOutcome::Existing(Box::new(first.assessment.clone()))
    );
    // Nothing of the second start was written, and the first one's order is intact.
    assert_eq!(store.assessment(second.assessment.id).await.unwrap(), None);
    assert_eq!(store.order_body(second.assessment.id).await.unwrap(), None);
    assert_eq!(
        store.order_body(first.assessment.id).await.unwrap(),
        Some(first.order_body)
    );
}

async fn a_start_after_the_assessment_finished_takes_over_the_start_key(store: S) {
    let t = tenant();
    let (first, second, third) = (
        start(&t.id, "app-1"),
        start(&t.id, "app-1"),
        start(&t.id, "app-1"),
    );
    store.create_assessment(&first).await.unwrap();
    assert!(
        store
            .record_cancelled(first.assessment.id, NOW + 1)
            .await
            .unwrap()
    );
    assert_eq!(
        store.create_assessment(&second).await.unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(
        store.create_assessment(&third).await.unwrap(),
        CreateOutcome::Existing(Box::new(second.assessment.clone()))
    );
    assert_eq!(
        read(&*store, first.assessment.id).await.status,
        Status::Cancelled
    );
}

async fn starts_for_another_application_type_or_tenant_are_independent(store: S) {
    let (t, other_tenant) = (tenant(), tenant());
    let other_package = PackageRef::parse("acme/criminal-plus").unwrap();
    // Ashby's application ids are opaque: separators and non-ASCII must not merge two keys.
    let starts = [
        start(&t.id, "app#1/ü"),
        start(&t.id, "app#1/u"),
        start(&t.id, "app#1"),
        start_of(&t.id, "app#1/ü", &other_package),
        start(&other_tenant.id, "app#1/ü"),
    ];
    for s in &starts {
        assert_eq!(
            store.create_assessment(s).await.unwrap(),
            CreateOutcome::Created
        );
    }
}

async fn two_concurrent_creates_with_the_same_start_key_create_one_assessment(store: S) {
    let t = tenant();
    let starts: Vec<NewAssessment> = (0..RACERS).map(|_| start(&t.id, "app-1")).collect();
    let outcomes = race(|i| {
        let (store, new) = (store.clone(), starts[i].clone());
        async move {
            (
                new.assessment.id,
                store.create_assessment(&new).await.unwrap(),
            )
        }
    })
    .await;
    let winners: Vec<AssessmentId> = outcomes
        .iter()
        .filter(|(_, o)| *o == CreateOutcome::Created)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let winner = read(&*store, winners[0]).await;
    for (id, outcome) in &outcomes {
        if *id != winner.id {
            assert_eq!(*outcome, CreateOutcome::Existing(Box::new(winner.clone())));
            assert_eq!(store.assessment(*id).await.unwrap(), None);
        }
    }
}

async fn concurrent_starts_after_a_finished_assessment_take_it_over_once(store: S) {
    let t = tenant();
    let first = start(&t.id, "app-1");
    store.create_assessment(&first).await.unwrap();
    assert!(
        store
            .record_order_rejected(first.assessment.id, "No such county", NOW)
            .await
            .unwrap()
    );
    let starts: Vec<NewAssessment> = (0..RACERS).map(|_| start(&t.id, "app-1")).collect();
    let outcomes = race(|i| {
        let (store, new) = (store.clone(), starts[i].clone());
        async move { store.create_assessment(&new).await.unwrap() }
    })
    .await;
    assert_eq!(count(&outcomes, &CreateOutcome::Created), 1, "{outcomes:?}");
}

// --- the order lease ---

async fn the_creator_holds_the_order_lease_until_it_expires(store: S) {
    let a = created(&*store).await;
    assert!(!store.claim_order(a.id, NOW, NOW + LEASE).await.unwrap());
    assert!(
        !store
            .claim_order(a.id, NOW + LEASE - 1, NOW + 2 * LEASE)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_order(a.id, NOW + LEASE, NOW + 2 * LEASE)
            .await
            .unwrap()
    );
    // The new holder's lease is held in turn.
    assert!(
        !store
            .claim_order(a.id, NOW + LEASE + 1, NOW + 3 * LEASE)
            .await
            .unwrap()
    );
    let b = read(&*store, a.id).await;
    assert_eq!(b.order_lease_until_ms, NOW + 2 * LEASE);
    assert!(b.version > a.version);
}

async fn only_one_of_concurrent_order_claims_wins(store: S) {
    let a = created(&*store).await;
    let claims = race(|_| {
        let store = store.clone();
        async move {
            store
                .claim_order(a.id, NOW + LEASE, NOW + 2 * LEASE)
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(count(&claims, &true), 1, "{claims:?}");
}

async fn a_released_order_lease_can_be_claimed_at_once(store: S) {
    let a = created(&*store).await;
    store.release_order(a.id).await.unwrap();
    let b = read(&*store, a.id).await;
    assert_eq!(b.order_lease_until_ms, 0);
    assert!(b.version > a.version);
    assert!(store.claim_order(a.id, NOW, NOW + LEASE).await.unwrap());
}

// --- the vendor's answer to the order ---

async fn an_accepted_order_is_ordered_with_its_vendor_reference_and_no_lease(store: S) {
    let a = created(&*store).await;
    store
        .record_order_accepted(a.id, Some("ACME-42"), NOW + 5)
        .await
        .unwrap();
    let b = read(&*store, a.id).await;
    assert_eq!(b.status, Status::Ordered);
    assert_eq!(b.vendor_reference.as_deref(), Some("ACME-42"));
    assert_eq!(b.order_lease_until_ms, 0);
    assert_eq!(b.updated_at_ms, NOW + 5);
    assert!(b.version > a.version);
}

async fn an_accepted_order_keeps_the_later_status_a_fast_callback_recorded(store: S) {
    let a = created(&*store).await;
    apply(&*store, a.id, "msg_1", "u1").await;
    store
        .record_order_accepted(a.id, Some("ACME-42"), NOW + 5)
        .await
        .unwrap();
    let b = read(&*store, a.id).await;
    assert_eq!(b.status, Status::InProgress);
    assert_eq!(b.vendor_reference.as_deref(), Some("ACME-42"));
    assert_eq!(b.order_lease_until_ms, 0);
}

async fn an_accepted_order_can_no_longer_be_claimed_or_rejected(store: S) {
    let a = created(&*store).await;
    store.record_order_accepted(a.id, None, NOW).await.unwrap();
    assert!(
        !store
            .claim_order(a.id, NOW + 10 * LEASE, NOW + 11 * LEASE)
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_order_rejected(a.id, "too late", NOW)
            .await
            .unwrap()
    );
    let b = read(&*store, a.id).await;
    assert_eq!(b.status, Status::Ordered);
    assert_eq!(b.rejection_message, None);
    assert_eq!(b.vendor_reference, None);
}

async fn a_rejected_order_keeps_the_vendor_message_and_is_final(store: S) {
    let a = created(&*store).await;
    assert!(
        store
            .record_order_rejected(a.id, "Package not available in CA", NOW + 5)
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_order_rejected(a.id, "again", NOW + 6)
            .await
            .unwrap()
    );
    assert!(!store.record_cancelled(a.id, NOW + 7).await.unwrap());
    let b = read(&*store, a.id).await;
    assert_eq!(b.status, Status::Rejected);
    assert_eq!(
        b.rejection_message.as_deref(),
        Some("Package not available in CA")
    );
    assert_eq!(b.order_lease_until_ms, 0);
    assert_eq!(b.updated_at_ms, NOW + 5);
}

async fn cancelling_a_live_assessment_succeeds_once(store: S) {
    let a = created(&*store).await;
    apply(&*store, a.id, "msg_1", "u1").await;
    assert!(store.record_cancelled(a.id, NOW + 9).await.unwrap());
    assert!(!store.record_cancelled(a.id, NOW + 10).await.unwrap());
    let b = read(&*store, a.id).await;
    assert_eq!(b.status, Status::Cancelled);
    assert_eq!(b.order_lease_until_ms, 0);
    assert_eq!(b.updated_at_ms, NOW + 9);
}

async fn writes_to_an_unknown_assessment_create_nothing(store: S) {
    let id = AssessmentId::new();
    assert!(!store.claim_order(id, NOW, NOW + LEASE).await.unwrap());
    store
        .record_order_accepted(id, Some("ref"), NOW)
        .await
        .unwrap();
    store.release_order(id).await.unwrap();
    assert!(!store.record_order_rejected(id, "no", NOW).await.unwrap());
    assert!(!store.record_cancelled(id, NOW).await.unwrap());
    assert_eq!(store.assessment(id).await.unwrap(), None);
}

// --- callbacks ---

async fn a_callback_changes_the_status_and_queues_the_next_update(store: S) {
    let a = created(&*store).await;
    let w = callback(&a, "msg_1", Status::InProgress, r#"{"n":1}"#);
    assert_eq!(
        store.apply_callback(&w).await.unwrap(),
        CallbackOutcome::Applied
    );
    let b = read(&*store, a.id).await;
    assert_eq!(b.status, Status::InProgress);
    assert_eq!(b.status_label.as_deref(), Some("InProgress"));
    assert_eq!(b.update_seq, 1);
    assert_eq!(b.last_update_ms, NOW + 1_000);
    assert_eq!(b.updated_at_ms, NOW + 1_000);
    assert_eq!(b.version, a.version + 1);
    let pending = store.pending_updates(a.id).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].seq, pending[0].body.as_str()),
        (1, r#"{"n":1}"#)
    );
    assert_eq!((pending[0].delivered, pending[0].attempts), (false, 0));
    assert_eq!(
        (pending[0].lease_until_ms, &pending[0].last_error),
        (0, &None)
    );
}

async fn a_repeated_webhook_id_is_a_duplicate_and_changes_nothing(store: S) {
    let a = created(&*store).await;
    apply(&*store, a.id, "msg_1", "u1").await;
    let b = read(&*store, a.id).await;
    // Redelivered, even with a fresh version and another status: still the same message.
    let again = callback(&b, "msg_1", Status::Completed, "u2");
    assert_eq!(
        store.apply_callback(&again).await.unwrap(),
        CallbackOutcome::Duplicate
    );
    assert_eq!(read(&*store, a.id).await, b);
    assert_eq!(store.pending_updates(a.id).await.unwrap().len(), 1);
}

async fn the_same_webhook_id_from_another_vendor_is_not_a_duplicate(store: S) {
    let a = created(&*store).await;
    apply(&*store, a.id, "msg_1", "u1").await;
    let mut w = callback(&read(&*store, a.id).await, "msg_1", Status::Completed, "u2");
    w.vendor_id = VendorId::parse("other-vendor").unwrap();
    assert_eq!(
        store.apply_callback(&w).await.unwrap(),
        CallbackOutcome::Applied
    );
}

async fn a_callback_on_a_stale_version_is_a_conflict_and_leaves_no_marker(store: S) {
    let a = created(&*store).await;
    apply(&*store, a.id, "msg_1", "u1").await;
    let stale = callback(&a, "msg_2", Status::Completed, "u2");
    assert_eq!(
        store.apply_callback(&stale).await.unwrap(),
        CallbackOutcome::Conflict
    );
    let b = read(&*store, a.id).await;
    assert_eq!((b.status, b.update_seq), (Status::InProgress, 1));
    assert_eq!(store.pending_updates(a.id).await.unwrap().len(), 1);
    // Re-read and decided again: the same webhook-id now applies, so no marker was left behind.
    let fresh = callback(&b, "msg_2", Status::Completed, "u2");
    assert_eq!(
        store.apply_callback(&fresh).await.unwrap(),
        CallbackOutcome::Applied
    );
    assert_eq!(read(&*store, a.id).await.status, Status::Completed);
}

async fn a_callback_for_an_unknown_assessment_is_a_conflict(store: S) {
    let mut ghost = start(&tenant().id, "app-1").assessment;
    ghost.id = AssessmentId::new();
    let w = callback(&ghost, "msg_1", Status::InProgress, "u1");
    assert_eq!(
        store.apply_callback(&w).await.unwrap(),
        CallbackOutcome::Conflict
    );
    assert_eq!(store.assessment(ghost.id).await.unwrap(), None);
    assert_eq!(store.pending_updates(ghost.id).await.unwrap(), vec![]);
}

async fn a_callback_without_a_change_records_only_the_marker(store: S) {
    let a = created(&*store).await;
    let mut w = callback(&a, "msg_1", Status::InProgress, "u1");
    w.change = None;
    assert_eq!(
        store.apply_callback(&w).await.unwrap(),
        CallbackOutcome::Applied
    );
    assert_eq!(read(&*store, a.id).await, a);
    assert_eq!(store.pending_updates(a.id).await.unwrap(), vec![]);
    assert_eq!(
        store.apply_callback(&w).await.unwrap(),
        CallbackOutcome::Duplicate
    );
}

async fn a_callback_without_a_label_removes_the_previous_label(store: S) {
    let a = created(&*store).await;
    apply(&*store, a.id, "msg_1", "u1").await;
    let mut w = callback(&read(&*store, a.id).await, "msg_2", Status::Completed, "u2");
    if let Some(c) = w.change.as_mut() {
        c.status_label = None;
    }
    assert_eq!(
        store.apply_callback(&w).await.unwrap(),
        CallbackOutcome::Applied
    );
    let b = read(&*store, a.id).await;
    assert_eq!((b.status, b.status_label), (Status::Completed, None));
}

async fn concurrent_callbacks_with_the_same_webhook_id_apply_once(store: S) {
    let a = created(&*store).await;
    let w = callback(&a, "msg_1", Status::InProgress, "u1");
    let outcomes = race(|_| {
        let (store, w) = (store.clone(), w.clone());
        async move { store.apply_callback(&w).await.unwrap() }
    })
    .await;
    assert_eq!(
        count(&outcomes, &CallbackOutcome::Applied),
        1,
        "{outcomes:?}"
    );
    assert_eq!(read(&*store, a.id).await.update_seq, 1);
    assert_eq!(store.pending_updates(a.id).await.unwrap().len(), 1);
}

async fn concurrent_callbacks_on_the_same_version_apply_once(store: S) {
    let a = created(&*store).await;
    let outcomes = race(|i| {
        let body = format!("u{i}");
        let w = callback(&a, &format!("msg_{i}"), Status::InProgress, &body);
        let store = store.clone();
        async move { (store.apply_callback(&w).await.unwrap(), body) }
    })
    .await;
    let applied: Vec<&str> = outcomes
        .iter()
        .filter(|(o, _)| *o == CallbackOutcome::Applied)
        .map(|(_, body)| body.as_str())
        .collect();
    assert_eq!(applied.len(), 1, "{outcomes:?}");
    let conflicts = outcomes
        .iter()
        .filter(|(o, _)| *o == CallbackOutcome::Conflict)
        .count();
    assert_eq!(conflicts, RACERS - 1, "{outcomes:?}");
    let pending = store.pending_updates(a.id).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].body, applied[0]);
    assert_eq!(read(&*store, a.id).await.update_seq, 1);
}

// --- the outbox of updates owed to Ashby ---

async fn pending_updates_come_oldest_first(store: S) {
    let a = created(&*store).await;
    // Twelve, so that the order has to hold past 9 → 10.
    for i in 1..=12 {
        apply(&*store, a.id, &format!("msg_{i}"), &format!("u{i}")).await;
    }
    let pending = store.pending_updates(a.id).await.unwrap();
    let got: Vec<(u64, &str)> = pending.iter().map(|u| (u.seq, u.body.as_str())).collect();
    let want: Vec<(u64, String)> = (1..=12).map(|i| (i, format!("u{i}"))).collect();
    let want: Vec<(u64, &str)> = want.iter().map(|(s, b)| (*s, b.as_str())).collect();
    assert_eq!(got, want);
    assert!(pending.iter().all(|u| u.assessment_id == a.id));
}

async fn only_one_of_concurrent_update_claims_wins_and_counts_an_attempt(store: S) {
    let a = created(&*store).await;
    apply(&*store, a.id, "msg_1", "u1").await;
    let claims = race(|_| {
        let store = store.clone();
        async move { store.claim_update(a.id, 1, NOW, NOW + LEASE).await.unwrap() }
    })
    .await;
    assert_eq!(count(&claims, &true), 1, "{claims:?}");
    let pending = store.pending_updates(a.id).await.unwrap();
    assert_eq!(
        (pending[0].attempts, pending[0].lease_until_ms),
        (1, NOW + LEASE)
    );
}

async fn a_claimed_update_is_leased_until_it_expires_or_is_released(store: S) {
    let a = created(&*store).await;
    apply(&*store, a.id, "msg_1", "u1").await;
    assert!(store.claim_update(a.id, 1, NOW, NOW + LEASE).await.unwrap());
    assert!(
        !store
            .claim_update(a.id, 1, NOW + LEASE - 1, NOW + 2 * LEASE)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_update(a.id, 1, NOW + LEASE, NOW + 2 * LEASE)
            .await
            .unwrap()
    );
    store
        .release_update(a.id, 1, "Ashby answered 503")
        .await
        .unwrap();
    let pending = store.pending_updates(a.id).await.unwrap();
    assert_eq!(pending[0].lease_until_ms, 0);
    assert_eq!(pending[0].last_error.as_deref(), Some("Ashby answered 503"));
    assert!(
        store
            .claim_update(a.id, 1, NOW + LEASE + 1, NOW + 3 * LEASE)
            .await
            .unwrap()
    );
    assert_eq!(store.pending_updates(a.id).await.unwrap()[0].attempts, 3);
}

async fn a_delivered_update_is_no_longer_pending_or_claimable(store: S) {
    let a = created(&*store).await;
    apply(&*store, a.id, "msg_1", "u1").await;
    apply(&*store, a.id, "msg_2", "u2").await;
    assert!(store.claim_update(a.id, 1, NOW, NOW + LEASE).await.unwrap());
    store.release_update(a.id, 1, "timeout").await.unwrap();
    assert!(store.claim_update(a.id, 1, NOW, NOW + LEASE).await.unwrap());
    store.mark_update_delivered(a.id, 1, NOW + 1).await.unwrap();
    let pending = store.pending_updates(a.id).await.unwrap();
    assert_eq!(pending.iter().map(|u| u.seq).collect::<Vec<_>>(), vec![2]);
    assert!(
        !store
            .claim_update(a.id, 1, NOW + 10 * LEASE, NOW + 11 * LEASE)
            .await
            .unwrap()
    );
}

async fn claiming_or_delivering_an_unknown_update_changes_nothing(store: S) {
    let a = created(&*store).await;
    apply(&*store, a.id, "msg_1", "u1").await;
    assert!(!store.claim_update(a.id, 2, NOW, NOW + LEASE).await.unwrap());
    store.release_update(a.id, 2, "x").await.unwrap();
    store.mark_update_delivered(a.id, 2, NOW).await.unwrap();
    let pending = store.pending_updates(a.id).await.unwrap();
    assert_eq!(pending.iter().map(|u| u.seq).collect::<Vec<_>>(), vec![1]);
    let unknown = AssessmentId::new();
    assert!(
        !store
            .claim_update(unknown, 1, NOW, NOW + LEASE)
            .await
            .unwrap()
    );
    store.mark_update_delivered(unknown, 1, NOW).await.unwrap();
    assert_eq!(store.pending_updates(unknown).await.unwrap(), vec![]);
}

// --- DynamoDB only: what the table itself must do ---

async fn raw_item(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: String,
    sk: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

#[tokio::test]
async fn dynamodb_a_replaced_token_leaves_no_item_and_a_leftover_one_finds_nothing() {
    let (client, table) = hub_tests::aws::fresh_table().await;
    let store = DynamoDbStore::new(client.clone(), table.clone());
    let (t, old, new) = (tenant(), token(), token());
    store.put_tenant(&t, &old).await.unwrap();
    store.put_tenant(&t, &new).await.unwrap();
    let old_pk = format!("TOKEN#{}", old.to_hex());
    assert_eq!(
        raw_item(&client, &table, old_pk.clone(), "TOKEN").await,
        None
    );
    // Were one left behind anyway, the tenant's own record of its token still refuses it.
    client
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S(old_pk))
        .item("sk", AttributeValue::S("TOKEN".into()))
        .item("tenant_id", AttributeValue::S(t.id.to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(store.tenant_by_token(&old).await.unwrap(), None);
    assert_eq!(store.tenant_by_token(&new).await.unwrap(), Some(t));
}

#[tokio::test]
async fn dynamodb_an_expired_order_body_is_absent_before_ttl_deletes_it() {
    let (client, table) = hub_tests::aws::fresh_table().await;
    let store = DynamoDbStore::new(client.clone(), table.clone());
    let mut new = start(&tenant().id, "app-1");
    new.pii_expires_at_s = now_s() - 1;
    let id = new.assessment.id;
    store.create_assessment(&new).await.unwrap();
    assert_eq!(store.order_body(id).await.unwrap(), None);
    assert!(store.assessment(id).await.unwrap().is_some());
    // The item is still there (TTL deletes lazily) and carries the TTL that will delete it.
    let order = raw_item(&client, &table, format!("ASSESSMENT#{id}"), "ORDER")
        .await
        .expect("order item not yet deleted");
    assert_eq!(
        order.get("expires_at"),
        Some(&AttributeValue::N(new.pii_expires_at_s.to_string()))
    );
}

#[tokio::test]
async fn dynamodb_candidate_pii_is_only_on_the_expiring_order_item() {
    let (client, table) = hub_tests::aws::fresh_table().await;
    let store = DynamoDbStore::new(client.clone(), table.clone());
    let new = start(&tenant().id, "app-1");
    store.create_assessment(&new).await.unwrap();
    let items = client
        .scan()
        .table_name(&table)
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    assert_eq!(items.len(), 3, "start key, assessment, order");
    for item in items {
        let holds_pii = format!("{item:?}").contains("ada@example.com");
        let is_order = item.get("sk") == Some(&AttributeValue::S("ORDER".into()));
        assert_eq!(holds_pii, is_order, "{:?}", item.get("sk"));
        assert_eq!(item.contains_key("expires_at"), is_order);
    }
}

#[tokio::test]
async fn dynamodb_the_table_expires_items_on_expires_at_and_creating_it_again_is_harmless() {
    let (client, table) = hub_tests::aws::fresh_table().await;
    DynamoDbStore::create_table(&client, &table).await.unwrap();
    let ttl = client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
}

#[tokio::test]
async fn dynamodb_an_undecodable_record_is_reported_as_corrupt_naming_the_attribute() {
    let (client, table) = hub_tests::aws::fresh_table().await;
    let store = DynamoDbStore::new(client.clone(), table.clone());
    let a = created(&store).await;
    client
        .update_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(format!("ASSESSMENT#{}", a.id)))
        .key("sk", AttributeValue::S("ASSESSMENT".into()))
        .update_expression("SET #s = :v")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":v", AttributeValue::S("half-done".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        store.assessment(a.id).await,
        Err(StoreError::Corrupt("assessment attribute status".into()))
    );
}

#[tokio::test]
async fn dynamodb_an_unreachable_table_is_unavailable_not_absent() {
    let (client, _) = hub_tests::aws::fresh_table().await;
    let store = DynamoDbStore::new(client, unique("no-such-table"));
    assert!(matches!(
        store.assessment(AssessmentId::new()).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store
            .claim_order(AssessmentId::new(), NOW, NOW + LEASE)
            .await,
        Err(StoreError::Unavailable(_))
    ));
}
