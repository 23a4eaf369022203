//! One conformance suite for the `Store` trait, written once and run against `MemoryStore` and
//! against `DynamoDbStore` on moto (`store_conformance::memory::…`, `store_conformance::dynamodb::…`).
//! Each test states one clause of the trait's contract; the concurrent ones release ten requests
//! together and count winners.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, IndexStatus, KeySchemaElement, KeyType,
    ProjectionType, ScalarAttributeType, TimeToLiveStatus,
};
use hub::clock::{ManualClock, Timestamp};
use hub::domain::connect::generate_connect_code;
use hub::domain::{
    Assessment, AssessmentId, AtsCall, Delivery, DeliveryHealth, DeliveryKind, DeliveryReport,
    DeliveryState, Invite, KeyCheck, NewDelivery, Package, PackageId, PackageRef, Status, Tenant,
    TenantHealth, TenantId, TokenHash, Vendor, VendorId, generate_trigger_token,
};
use hub::ports::{
    AdminStore, Assessments, Change, ChangeOutcome, ChangeWrite, CreateOutcome, DeliveryQueue,
    DueRef, NewAssessment, Registry, RegistryAdmin, Retry, StartKey, StoreError, WebhookMarker,
};
use hub::ports::{IssueOutcome, MAX_TENANT_TOKENS, RegistryOutcome};
use hub::store::{DynamoDbStore, MemoryStore};
use hub_tests::aws_proxy::{AwsProxy, Fault};
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use url::Url;

type S = Arc<dyn AdminStore>;

/// The request clock. Leases are compared with the `now_ms` the caller passes, so a fixed clock
/// keeps lease tests exact.
const NOW: Timestamp = Timestamp::from_ms(1_700_000_000_000);
const LEASE: Duration = Duration::from_millis(30_000);
const MS: Duration = Duration::from_millis(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
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
    an_ats_report_on_a_tenant_is_counted_kept_and_survives_operator_updates,
    a_vendor_s_package_options_are_read_back_as_declared,
    an_assessment_keeps_its_candidate_id_and_report_file_deliveries_come_back_as_files,
    a_tenant_is_found_by_its_token_and_by_its_id,
    an_unknown_token_finds_no_tenant,
    a_disabled_tenant_is_not_found_by_its_token,
    a_replaced_token_no_longer_finds_the_tenant,
    concurrent_token_replacements_leave_exactly_one_working_token,
    a_vendor_is_read_back_with_its_packages_and_can_be_replaced,
    a_tenant_is_created_once_and_a_second_create_changes_nothing,
    a_token_another_tenant_holds_cannot_be_taken_by_create_or_add,
    an_added_token_works_beside_the_old_one_until_it_is_revoked,
    revoking_the_last_token_locks_the_tenant_out_until_a_token_is_added,
    revoking_a_token_the_tenant_does_not_hold_changes_nothing,
    a_tenant_holds_at_most_the_maximum_number_of_tokens,
    put_tenant_makes_its_token_the_only_one,
    a_disabled_tenant_refuses_all_its_tokens_and_enabling_restores_them,
    updating_a_tenant_changes_its_fields_and_keeps_its_id_and_tokens,
    updates_of_an_unknown_tenant_or_vendor_write_nothing,
    concurrent_tenant_updates_lose_no_change,
    concurrent_token_additions_all_work,
    tenants_are_listed_by_id_with_their_token_hashes_only,
    a_vendor_is_created_once_and_updated_in_place,
    concurrent_vendor_updates_lose_no_change,
    vendors_are_listed_by_id,
    a_created_assessment_is_read_back_with_its_order_as_delivery_1,
    a_second_start_of_a_live_assessment_returns_the_existing_one,
    a_start_after_the_assessment_finished_takes_over_the_start_key,
    starts_for_another_application_type_or_tenant_are_independent,
    two_concurrent_creates_with_the_same_start_key_create_one_assessment,
    concurrent_starts_after_a_finished_assessment_take_it_over_once,
    a_change_updates_the_assessment_and_appends_its_deliveries,
    a_change_keeps_what_it_does_not_carry,
    deliveries_get_consecutive_sequence_numbers_across_changes,
    a_repeated_webhook_id_is_a_duplicate_and_changes_nothing,
    the_same_webhook_id_from_another_vendor_is_not_a_duplicate,
    a_change_on_a_stale_version_is_a_conflict_and_leaves_no_marker,
    a_change_whose_update_seq_is_not_its_snapshots_is_a_conflict,
    a_change_for_an_unknown_assessment_is_a_conflict_and_writes_nothing,
    a_marker_alone_is_recorded_once,
    a_change_without_a_label_removes_the_previous_label,
    settling_a_delivery_alone_takes_it_out_of_the_queue_once,
    a_vendor_answer_settles_the_order_and_changes_the_assessment_in_one_write,
    concurrent_changes_with_the_same_webhook_id_apply_once,
    concurrent_changes_on_the_same_version_apply_once,
    concurrent_settlements_of_one_delivery_apply_once,
    the_creator_holds_the_order_lease_until_it_expires,
    only_one_of_concurrent_claims_wins_and_counts_an_attempt,
    a_failed_attempt_releases_the_lease_and_is_due_again_at_its_retry_time,
    a_delivered_delivery_is_not_open_due_claimable_or_stuck,
    parked_and_dead_deliveries_are_stuck_until_redelivered,
    due_deliveries_come_by_next_attempt_up_to_the_limit,
    writes_to_an_unknown_delivery_change_nothing,
    a_greenhouse_tenant_keeps_its_ats_through_reads_lists_and_updates,
    a_greenhouse_assessment_keeps_its_ats_url_summary_and_reported_errors,
    a_start_key_kept_after_the_end_answers_the_finished_assessment,
    a_greenhouse_patch_delivery_is_queued_claimed_and_settled_like_the_others,
    a_connect_link_is_stored_and_read_back_by_its_hash,
    a_tenant_s_links_are_listed_newest_first_and_no_other_tenant_s,
    a_link_for_an_unknown_tenant_is_not_found_and_not_stored,
    revoking_a_link_by_its_id_keeps_the_first_revocation_time,
    revoking_an_unknown_link_is_unknown_invite_and_writes_nothing,
    showing_the_token_on_a_tenant_without_tokens_issues_its_only_token,
    a_second_show_on_a_link_is_already_shown_and_writes_nothing,
    a_replacement_token_does_not_use_up_the_links_show,
    a_revoked_expired_or_unknown_link_issues_nothing,
    a_new_token_is_pending_beside_the_old_until_the_ats_calls_with_it,
    a_new_token_replaces_a_pending_one_the_ats_never_called_with,
    completing_a_rotation_leaves_only_the_pending_token,
    completing_a_rotation_with_a_token_that_is_not_pending_changes_nothing,
    revoking_the_pending_token_ends_the_rotation,
    issuing_to_a_tenant_holding_the_maximum_of_tokens_is_too_many,
    a_pending_token_does_not_count_against_the_maximum_it_replaces,
    concurrent_shows_on_one_link_issue_exactly_one_token,
    an_ats_call_is_recorded_then_again_only_once_stale,
    concurrent_ats_calls_record_once,
    a_changed_delivery_outcome_is_recorded_at_once_and_the_same_only_once_stale,
    a_key_check_is_read_back_with_the_account,
    a_tenant_s_health_survives_operator_updates_and_is_listed,
    failures_are_counted_per_key_from_zero,
    concurrent_failures_are_all_counted,
    a_tenant_created_awaiting_has_no_token_until_its_link_issues_one,
    an_awaiting_tenant_is_created_once,
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
        ats: hub::domain::Ats::Ashby,
        ashby_base_url: Url::parse("https://api.ashbyhq.com").unwrap(),
        packages: vec![package()],
        disabled: false,
    }
}

fn token() -> TokenHash {
    TokenHash::of(&generate_trigger_token())
}

/// The hashes of the tenant's tokens, in the store's order (oldest first).
async fn tokens_of(store: &dyn AdminStore, id: &TenantId) -> Vec<TokenHash> {
    let tokens = store.tenant_tokens(id).await.unwrap();
    tokens.iter().map(|t| t.hash).collect()
}

fn acme_vendor(id: &str) -> Vendor {
    Vendor {
        id: VendorId::parse(id).unwrap(),
        name: "Acme Checks".into(),
        order_url: Url::parse("https://acme.example/hub/orders").unwrap(),
        packages: vec![Package {
            id: PackageId::parse("criminal-basic").unwrap(),
            name: "Criminal, basic".into(),
            description: "County search".into(),
            options: vec![],
        }],
    }
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A start as the start handler makes it: `Ordering`, its vendor order due now and leased by the
/// creator, which tries it at once.
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
            last_update_ms: Timestamp::EPOCH,
            update_seq: 0,
            version: 1,
            candidate_id: None,
            ats: hub::domain::Ats::Ashby,
            ats_url: None,
            summary: None,
            ats_errors: 0,
            last_ats_error: None,
        },
        start_key: StartKey {
            tenant_id: tenant.clone(),
            application_id: application_id.into(),
            assessment_type_id: package.type_id(),
        },
        order: NewDelivery {
            kind: DeliveryKind::VendorOrder,
            body: format!(
                r#"{{"assessment_id":"{id}","candidate":{{"email":"ada@example.com"}}}}"#
            ),
            next_attempt_ms: NOW,
            leased_until_ms: NOW + LEASE,
            expires_at_s: Some(now_s() + 86_400),
        },
        keep_finished: false,
    }
}

/// The order delivery `create_assessment` makes of `new`: delivery 1.
fn order_of(new: &NewAssessment) -> Delivery {
    Delivery {
        assessment_id: new.assessment.id,
        seq: 1,
        kind: DeliveryKind::VendorOrder,
        body: new.order.body.clone(),
        state: DeliveryState::Pending,
        attempts: 0,
        created_ms: NOW,
        next_attempt_ms: NOW,
        lease_until_ms: NOW + LEASE,
        last_error: None,
    }
}

/// A created assessment, read back (its order is delivery 1).
async fn created(store: &dyn AdminStore) -> Assessment {
    let new = start(&tenant().id, &unique("app"));
    assert_eq!(
        store.create_assessment(&new).await.unwrap(),
        CreateOutcome::Created
    );
    read(store, new.assessment.id).await
}

async fn read(store: &dyn AdminStore, id: AssessmentId) -> Assessment {
    store
        .assessment(id)
        .await
        .unwrap()
        .expect("assessment exists")
}

fn vendor() -> VendorId {
    VendorId::parse("acme").unwrap()
}

/// When a change of `a` happens: each write a little later, so deliveries differ in age.
fn at(a: &Assessment) -> Timestamp {
    NOW + ms(1_000 * a.version)
}

/// An Ashby update owing `body`, due at `at`.
fn update(body: &str, at: Timestamp) -> NewDelivery {
    NewDelivery {
        kind: DeliveryKind::AtsUpdate,
        body: body.into(),
        next_attempt_ms: at,
        leased_until_ms: Timestamp::EPOCH,
        expires_at_s: None,
    }
}

/// A change of `a` (as read) to `status`, owing `deliveries`.
fn change(a: &Assessment, status: Status, deliveries: Vec<NewDelivery>) -> Change {
    Change {
        expected_version: a.version,
        expected_update_seq: a.update_seq,
        status,
        status_label: Some(format!("{status:?}")),
        rejection_message: None,
        vendor_reference: None,
        now_ms: at(a),
        deliveries,
        update_ms: Some(at(a)),
        summary: None,
        ats_error: None,
    }
}

fn marker(webhook_id: &str) -> WebhookMarker {
    WebhookMarker {
        vendor_id: vendor(),
        webhook_id: webhook_id.into(),
        expires_at_s: now_s() + 86_400,
    }
}

/// A callback as the callback handler writes it: its marker, and a change of `a` (as read) to
/// `status` owing Ashby `body`.
fn callback(a: &Assessment, webhook_id: &str, status: Status, body: &str) -> ChangeWrite {
    ChangeWrite {
        assessment_id: a.id,
        marker: Some(marker(webhook_id)),
        change: Some(change(a, status, vec![update(body, at(a))])),
        settle: None,
    }
}

/// Only a change (as the start, cancel and delivery code write them).
fn only_change(a: &Assessment, status: Status, deliveries: Vec<NewDelivery>) -> ChangeWrite {
    ChangeWrite {
        assessment_id: a.id,
        marker: None,
        change: Some(change(a, status, deliveries)),
        settle: None,
    }
}

/// Only the settling of one delivery.
fn only_settle(id: AssessmentId, seq: u64) -> ChangeWrite {
    ChangeWrite {
        assessment_id: id,
        marker: None,
        change: None,
        settle: Some(seq),
    }
}

/// Applies one callback on the current version and expects it to be applied.
async fn apply(store: &dyn AdminStore, id: AssessmentId, webhook_id: &str, body: &str) {
    let a = read(store, id).await;
    let w = callback(&a, webhook_id, Status::InProgress, body);
    assert_eq!(store.apply(&w).await.unwrap(), ChangeOutcome::Applied);
}

async fn open(store: &dyn AdminStore, id: AssessmentId) -> Vec<Delivery> {
    store.open_deliveries(id).await.unwrap()
}

/// The open delivery `seq` of `id`.
async fn delivery(store: &dyn AdminStore, id: AssessmentId, seq: u64) -> Delivery {
    open(store, id)
        .await
        .into_iter()
        .find(|d| d.seq == seq)
        .expect("delivery is open")
}

fn seqs(deliveries: &[Delivery]) -> Vec<u64> {
    deliveries.iter().map(|d| d.seq).collect()
}

fn due_ref(id: AssessmentId, seq: u64, next_attempt_ms: Timestamp) -> DueRef {
    DueRef {
        assessment_id: id,
        seq,
        next_attempt_ms,
    }
}

/// The due deliveries once `wanted` holds of them. The scheduler reads an index that DynamoDB
/// updates shortly after the write (moto at once): poll a little before deciding.
async fn due_once(
    store: &dyn AdminStore,
    now_ms: Timestamp,
    limit: usize,
    wanted: impl Fn(&[DueRef]) -> bool,
) -> Vec<DueRef> {
    eventually(|| store.due_deliveries(now_ms, limit), |d| wanted(d)).await
}

/// The stuck deliveries once `wanted` holds of them (see `due_once`).
async fn stuck_once(
    store: &dyn AdminStore,
    limit: usize,
    wanted: impl Fn(&[Delivery]) -> bool,
) -> Vec<Delivery> {
    eventually(|| store.stuck_deliveries(limit), |d| wanted(d)).await
}

/// Reads until `wanted` holds, for at most about five seconds, and returns the last read.
async fn eventually<T, F, Fut>(read: F, wanted: impl Fn(&Vec<T>) -> bool) -> Vec<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Vec<T>, StoreError>>,
{
    let mut last = read().await.unwrap();
    for _ in 0..50 {
        if wanted(&last) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = read().await.unwrap();
    }
    last
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
    // `race` returns results in the order the requests finished, so each carries its index.
    let results = race(|i| {
        let (store, t, token) = (store.clone(), t.clone(), tokens[i]);
        async move { (i, store.put_tenant(&t, &token).await) }
    })
    .await;
    // Every writer wants to win here, so a store may give up on some of them; the contract only
    // lets it do so with `Unavailable`, having written nothing.
    for (_, r) in &results {
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
    let winner = results.iter().find(|(i, _)| *i == working[0]);
    assert_eq!(winner.map(|(_, r)| r), Some(&Ok(())), "{results:?}");
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
                options: vec![],
            },
            Package {
                id: PackageId::parse("criminal-plus").unwrap(),
                name: "Criminal, plus".into(),
                description: String::new(),
                options: vec![],
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

async fn a_vendor_s_package_options_are_read_back_as_declared(store: S) {
    let options: Vec<hub::domain::PackageOption> = serde_json::from_value(serde_json::json!([
        {"id": "work_location", "name": "Work location", "type": "ValueSelect", "required": true,
         "possible_values": [{"key": "us", "value": "United States"}, {"key": "uk", "value": "United Kingdom"}]},
        {"id": "note", "name": "Note", "type": "LongText"},
        {"id": "seats", "name": "Seats", "type": "Number", "required": false}
    ]))
    .unwrap();
    let mut v = Vendor {
        id: VendorId::parse(&unique("v")).unwrap(),
        name: "Acme Checks".into(),
        order_url: Url::parse("https://acme.example/hub/orders").unwrap(),
        packages: vec![
            Package {
                id: PackageId::parse("panel").unwrap(),
                name: "Panel".into(),
                description: String::new(),
                options: options.clone(),
            },
            Package {
                id: PackageId::parse("plain").unwrap(),
                name: "Plain".into(),
                description: String::new(),
                options: vec![],
            },
        ],
    };
    store.put_vendor(&v).await.unwrap();
    assert_eq!(store.vendor(&v.id).await.unwrap(), Some(v.clone()));
    // Replaced in place, and removed.
    let updated = store
        .update_vendor(&v.id, &|x| x.packages[0].options.truncate(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.packages[0].options, options[..1]);
    v.packages[0].options.clear();
    store.put_vendor(&v).await.unwrap();
    assert_eq!(store.vendor(&v.id).await.unwrap(), Some(v));
}

async fn an_assessment_keeps_its_candidate_id_and_report_file_deliveries_come_back_as_files(
    store: S,
) {
    let mut new = start(&tenant().id, &unique("app"));
    new.assessment.candidate_id = Some("cand-42".into());
    assert_eq!(
        store.create_assessment(&new).await.unwrap(),
        CreateOutcome::Created
    );
    let a = read(&*store, new.assessment.id).await;
    assert_eq!(a.candidate_id.as_deref(), Some("cand-42"));
    let file = NewDelivery {
        kind: DeliveryKind::AtsFile,
        body: r#"{"candidate_id":"cand-42"}"#.into(),
        next_attempt_ms: at(&a),
        leased_until_ms: Timestamp::EPOCH,
        expires_at_s: None,
    };
    let w = only_change(&a, Status::Completed, vec![file, update("{}", at(&a))]);
    assert_eq!(store.apply(&w).await.unwrap(), ChangeOutcome::Applied);
    let b = read(&*store, a.id).await;
    assert_eq!(
        b.candidate_id.as_deref(),
        Some("cand-42"),
        "kept by a change"
    );
    let kinds: Vec<DeliveryKind> = open(&*store, a.id).await.iter().map(|d| d.kind).collect();
    assert_eq!(
        kinds,
        [
            DeliveryKind::VendorOrder,
            DeliveryKind::AtsFile,
            DeliveryKind::AtsUpdate
        ]
    );
}

async fn an_ats_report_on_a_tenant_is_counted_kept_and_survives_operator_updates(store: S) {
    let t = Tenant {
        id: TenantId::parse(&unique("t")).unwrap(),
        ..tenant()
    };
    store
        .put_tenant(
            &t,
            &TokenHash::of(&secrecy::SecretString::from(unique("tok"))),
        )
        .await
        .unwrap();
    let entry = |store: S, id: TenantId| async move {
        store
            .list_tenants()
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.tenant.id == id)
            .unwrap()
    };
    assert_eq!(entry(store.clone(), t.id.clone()).await.ats_errors, 0);
    assert!(
        store
            .record_tenant_ats_error(&t.id, "list_tests: a")
            .await
            .unwrap()
    );
    store
        .update_tenant(&t.id, &|x| x.name = "Renamed".into())
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .record_tenant_ats_error(&t.id, "send_test: b")
            .await
            .unwrap()
    );
    let e = entry(store.clone(), t.id.clone()).await;
    assert_eq!(e.ats_errors, 2);
    assert_eq!(e.last_ats_error.as_deref(), Some("send_test: b"));
    assert_eq!(e.tenant.name, "Renamed", "neither write undid the other");
    let unknown = TenantId::parse(&unique("t")).unwrap();
    assert!(!store.record_tenant_ats_error(&unknown, "x").await.unwrap());
}

async fn a_tenant_is_created_once_and_a_second_create_changes_nothing(store: S) {
    let (t, first) = (tenant(), token());
    assert_eq!(
        store.create_tenant(&t, &first).await.unwrap(),
        RegistryOutcome::Done
    );
    assert_eq!(
        store.tenant_by_token(&first).await.unwrap(),
        Some(t.clone())
    );
    let mut again = t.clone();
    again.name = "Impostor".into();
    let second = token();
    assert_eq!(
        store.create_tenant(&again, &second).await.unwrap(),
        RegistryOutcome::AlreadyExists
    );
    assert_eq!(store.tenant(&t.id).await.unwrap(), Some(t.clone()));
    assert_eq!(store.tenant_by_token(&first).await.unwrap(), Some(t));
    assert_eq!(store.tenant_by_token(&second).await.unwrap(), None);
}

async fn a_token_another_tenant_holds_cannot_be_taken_by_create_or_add(store: S) {
    let (owner, shared) = (tenant(), token());
    store.create_tenant(&owner, &shared).await.unwrap();
    let newcomer = tenant();
    assert_eq!(
        store.create_tenant(&newcomer, &shared).await.unwrap(),
        RegistryOutcome::TokenInUse
    );
    assert_eq!(store.tenant(&newcomer.id).await.unwrap(), None);
    let other = tenant();
    store.create_tenant(&other, &token()).await.unwrap();
    assert_eq!(
        store.add_tenant_token(&other.id, &shared).await.unwrap(),
        RegistryOutcome::TokenInUse
    );
    assert_eq!(store.tenant_tokens(&other.id).await.unwrap().len(), 1);
    assert_eq!(store.tenant_by_token(&shared).await.unwrap(), Some(owner));
}

async fn an_added_token_works_beside_the_old_one_until_it_is_revoked(store: S) {
    let (t, old, new) = (tenant(), token(), token());
    store.create_tenant(&t, &old).await.unwrap();
    assert_eq!(
        store.add_tenant_token(&t.id, &new).await.unwrap(),
        RegistryOutcome::Done
    );
    assert_eq!(store.tenant_by_token(&old).await.unwrap(), Some(t.clone()));
    assert_eq!(store.tenant_by_token(&new).await.unwrap(), Some(t.clone()));
    let hashes: Vec<TokenHash> = tokens_of(&*store, &t.id).await;
    assert_eq!(hashes.len(), 2);
    assert!(hashes.contains(&old) && hashes.contains(&new));
    // Adding a token the tenant already holds changes nothing.
    assert_eq!(
        store.add_tenant_token(&t.id, &new).await.unwrap(),
        RegistryOutcome::Done
    );
    assert_eq!(store.tenant_tokens(&t.id).await.unwrap().len(), 2);

    assert_eq!(
        store.revoke_tenant_token(&t.id, &old).await.unwrap(),
        RegistryOutcome::Done
    );
    assert_eq!(store.tenant_by_token(&old).await.unwrap(), None);
    assert_eq!(store.tenant_by_token(&new).await.unwrap(), Some(t.clone()));
    assert_eq!(tokens_of(&*store, &t.id).await, vec![new]);
    // A revoked token can be revoked no more, and can come back only by being added again.
    assert_eq!(
        store.revoke_tenant_token(&t.id, &old).await.unwrap(),
        RegistryOutcome::UnknownToken
    );
}

async fn revoking_the_last_token_locks_the_tenant_out_until_a_token_is_added(store: S) {
    let (t, only, next) = (tenant(), token(), token());
    store.create_tenant(&t, &only).await.unwrap();
    assert_eq!(
        store.revoke_tenant_token(&t.id, &only).await.unwrap(),
        RegistryOutcome::Done
    );
    assert_eq!(store.tenant_by_token(&only).await.unwrap(), None);
    assert_eq!(store.tenant_tokens(&t.id).await.unwrap(), vec![]);
    assert_eq!(store.tenant(&t.id).await.unwrap(), Some(t.clone()));
    store.add_tenant_token(&t.id, &next).await.unwrap();
    assert_eq!(store.tenant_by_token(&next).await.unwrap(), Some(t));
}

async fn revoking_a_token_the_tenant_does_not_hold_changes_nothing(store: S) {
    let (t, mine) = (tenant(), token());
    let (other, theirs) = (tenant(), token());
    store.create_tenant(&t, &mine).await.unwrap();
    store.create_tenant(&other, &theirs).await.unwrap();
    assert_eq!(
        store.revoke_tenant_token(&t.id, &theirs).await.unwrap(),
        RegistryOutcome::UnknownToken
    );
    assert_eq!(
        store.revoke_tenant_token(&t.id, &token()).await.unwrap(),
        RegistryOutcome::UnknownToken
    );
    let unknown = tenant();
    assert_eq!(
        store.revoke_tenant_token(&unknown.id, &mine).await.unwrap(),
        RegistryOutcome::NotFound
    );
    assert_eq!(
        store.add_tenant_token(&unknown.id, &token()).await.unwrap(),
        RegistryOutcome::NotFound
    );
    assert_eq!(store.tenant_by_token(&mine).await.unwrap(), Some(t));
    assert_eq!(store.tenant_by_token(&theirs).await.unwrap(), Some(other));
}

async fn a_tenant_holds_at_most_the_maximum_number_of_tokens(store: S) {
    let t = tenant();
    store.create_tenant(&t, &token()).await.unwrap();
    for _ in 1..MAX_TENANT_TOKENS {
        assert_eq!(
            store.add_tenant_token(&t.id, &token()).await.unwrap(),
            RegistryOutcome::Done
        );
    }
    let refused = token();
    assert_eq!(
        store.add_tenant_token(&t.id, &refused).await.unwrap(),
        RegistryOutcome::TooManyTokens
    );
    assert_eq!(store.tenant_by_token(&refused).await.unwrap(), None);
    assert_eq!(
        store.tenant_tokens(&t.id).await.unwrap().len(),
        MAX_TENANT_TOKENS
    );
}

async fn put_tenant_makes_its_token_the_only_one(store: S) {
    let (t, first, second, replacement) = (tenant(), token(), token(), token());
    store.create_tenant(&t, &first).await.unwrap();
    store.add_tenant_token(&t.id, &second).await.unwrap();
    store.put_tenant(&t, &replacement).await.unwrap();
    assert_eq!(store.tenant_by_token(&first).await.unwrap(), None);
    assert_eq!(store.tenant_by_token(&second).await.unwrap(), None);
    assert_eq!(
        store.tenant_by_token(&replacement).await.unwrap(),
        Some(t.clone())
    );
    assert_eq!(tokens_of(&*store, &t.id).await, vec![replacement]);
}

async fn a_disabled_tenant_refuses_all_its_tokens_and_enabling_restores_them(store: S) {
    let (t, old, new) = (tenant(), token(), token());
    store.create_tenant(&t, &old).await.unwrap();
    store.add_tenant_token(&t.id, &new).await.unwrap();
    let disabled = store
        .update_tenant(&t.id, &|t| t.disabled = true)
        .await
        .unwrap()
        .expect("tenant exists");
    assert!(disabled.disabled);
    assert_eq!(store.tenant_by_token(&old).await.unwrap(), None);
    assert_eq!(store.tenant_by_token(&new).await.unwrap(), None);
    store
        .update_tenant(&t.id, &|t| t.disabled = false)
        .await
        .unwrap();
    assert_eq!(store.tenant_by_token(&old).await.unwrap(), Some(t.clone()));
    assert_eq!(store.tenant_by_token(&new).await.unwrap(), Some(t));
}

async fn updating_a_tenant_changes_its_fields_and_keeps_its_id_and_tokens(store: S) {
    let (t, tok) = (tenant(), token());
    store.create_tenant(&t, &tok).await.unwrap();
    let before = store.tenant_tokens(&t.id).await.unwrap();
    let extra = PackageRef::parse("acme/criminal-plus").unwrap();
    let updated = store
        .update_tenant(&t.id, &|x| {
            x.id = TenantId::parse("someone-else").unwrap();
            x.name = "Renamed".into();
            x.ashby_base_url = Url::parse("https://ashby.example").unwrap();
            x.packages.push(extra.clone());
        })
        .await
        .unwrap()
        .expect("tenant exists");
    let want = Tenant {
        id: t.id.clone(),
        name: "Renamed".into(),
        ats: hub::domain::Ats::Ashby,
        ashby_base_url: Url::parse("https://ashby.example").unwrap(),
        packages: vec![package(), extra.clone()],
        disabled: false,
    };
    assert_eq!(updated, want);
    assert_eq!(store.tenant(&t.id).await.unwrap(), Some(want.clone()));
    assert_eq!(store.tenant_by_token(&tok).await.unwrap(), Some(want));
    assert_eq!(store.tenant_tokens(&t.id).await.unwrap(), before);
    let other = TenantId::parse("someone-else").unwrap();
    assert_eq!(store.tenant(&other).await.unwrap(), None);
}

async fn updates_of_an_unknown_tenant_or_vendor_write_nothing(store: S) {
    let t = tenant();
    assert_eq!(
        store
            .update_tenant(&t.id, &|x| x.disabled = true)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.tenant(&t.id).await.unwrap(), None);
    let v = VendorId::parse(&unique("v")).unwrap();
    assert_eq!(
        store
            .update_vendor(&v, &|x| x.name = "Ghost".into())
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.vendor(&v).await.unwrap(), None);
    assert_eq!(store.tenant_tokens(&t.id).await.unwrap(), vec![]);
}

async fn concurrent_tenant_updates_lose_no_change(store: S) {
    let t = tenant();
    store.create_tenant(&t, &token()).await.unwrap();
    let results = race(|i| {
        let (store, id) = (store.clone(), t.id.clone());
        async move {
            let p = PackageRef::parse(&format!("acme/p{i}")).unwrap();
            store
                .update_tenant(&id, &|x| x.packages.push(p.clone()))
                .await
                .map(|_| i)
        }
    })
    .await;
    // A store may give up under contention, with `Unavailable` and nothing written; every
    // update it reported as done must be there.
    let stored = store.tenant(&t.id).await.unwrap().unwrap().packages;
    let mut done = 0;
    for r in &results {
        match r {
            Ok(i) => {
                done += 1;
                let p = PackageRef::parse(&format!("acme/p{i}")).unwrap();
                assert!(stored.contains(&p), "{p} lost: {stored:?}");
            }
            Err(e) => assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}"),
        }
    }
    assert!(done > 0, "{results:?}");
    assert_eq!(stored.len(), 1 + done, "{stored:?}");
}

async fn concurrent_token_additions_all_work(store: S) {
    let t = tenant();
    store.create_tenant(&t, &token()).await.unwrap();
    let added: Vec<TokenHash> = (1..MAX_TENANT_TOKENS).map(|_| token()).collect();
    let barrier = Arc::new(Barrier::new(added.len()));
    let mut set = JoinSet::new();
    for h in added.clone() {
        let (store, id, barrier) = (store.clone(), t.id.clone(), barrier.clone());
        set.spawn(async move {
            barrier.wait().await;
            (h, store.add_tenant_token(&id, &h).await)
        });
    }
    for (h, r) in set.join_all().await {
        match r {
            Ok(outcome) => {
                assert_eq!(outcome, RegistryOutcome::Done);
                assert_eq!(store.tenant_by_token(&h).await.unwrap(), Some(t.clone()));
            }
            Err(e) => {
                assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
                assert_eq!(store.tenant_by_token(&h).await.unwrap(), None);
            }
        }
    }
    // The listing and the tokens that work are the same set.
    for h in tokens_of(&*store, &t.id).await {
        assert_eq!(store.tenant_by_token(&h).await.unwrap(), Some(t.clone()));
    }
}

async fn tenants_are_listed_by_id_with_their_token_hashes_only(store: S) {
    let (a, b) = (tenant(), tenant());
    let (a1, a2, b1) = (token(), token(), token());
    store.create_tenant(&b, &b1).await.unwrap();
    store.create_tenant(&a, &a1).await.unwrap();
    store.add_tenant_token(&a.id, &a2).await.unwrap();
    // Other kinds of records are not tenants.
    created(&*store).await;
    store.put_vendor(&acme_vendor(&unique("v"))).await.unwrap();
    let listed = store.list_tenants().await.unwrap();
    let ids: Vec<&TenantId> = listed.iter().map(|e| &e.tenant.id).collect();
    let mut want = vec![&a.id, &b.id];
    want.sort();
    assert_eq!(ids, want);
    let of = |id: &TenantId| listed.iter().find(|e| &e.tenant.id == id).unwrap();
    assert_eq!(of(&a.id).tenant, a);
    let mut hashes: Vec<TokenHash> = of(&a.id).tokens.iter().map(|t| t.hash).collect();
    hashes.sort_by_key(|h| h.to_hex());
    let mut expected = vec![a1, a2];
    expected.sort_by_key(|h| h.to_hex());
    assert_eq!(hashes, expected);
    assert_eq!(
        of(&b.id).tokens.iter().map(|t| t.hash).collect::<Vec<_>>(),
        vec![b1]
    );
    // Oldest first, with when each was added.
    let tokens = &of(&a.id).tokens;
    assert!(tokens[0].added_at_ms <= tokens[1].added_at_ms);
    assert!(
        tokens
            .iter()
            .all(|t| t.added_at_ms > Timestamp::from_ms(1_600_000_000_000))
    );
}

async fn a_vendor_is_created_once_and_updated_in_place(store: S) {
    let v = acme_vendor(&unique("v"));
    assert_eq!(
        store.create_vendor(&v).await.unwrap(),
        RegistryOutcome::Done
    );
    let mut impostor = v.clone();
    impostor.order_url = Url::parse("https://evil.example/orders").unwrap();
    assert_eq!(
        store.create_vendor(&impostor).await.unwrap(),
        RegistryOutcome::AlreadyExists
    );
    assert_eq!(store.vendor(&v.id).await.unwrap(), Some(v.clone()));
    let extra = Package {
        id: PackageId::parse("drug-test").unwrap(),
        name: "Drug test".into(),
        description: "Ten-panel".into(),
        options: vec![],
    };
    let updated = store
        .update_vendor(&v.id, &|x| {
            x.id = VendorId::parse("someone-else").unwrap();
            x.packages.push(extra.clone());
        })
        .await
        .unwrap()
        .expect("vendor exists");
    let mut want = v.clone();
    want.packages.push(extra.clone());
    assert_eq!(updated, want);
    assert_eq!(store.vendor(&v.id).await.unwrap(), Some(want));
}

async fn concurrent_vendor_updates_lose_no_change(store: S) {
    let v = acme_vendor(&unique("v"));
    store.create_vendor(&v).await.unwrap();
    let results = race(|i| {
        let (store, id) = (store.clone(), v.id.clone());
        async move {
            let p = Package {
                id: PackageId::parse(&format!("p{i}")).unwrap(),
                name: format!("P{i}"),
                description: String::new(),
                options: vec![],
            };
            store
                .update_vendor(&id, &|x| x.packages.push(p.clone()))
                .await
                .map(|_| i)
        }
    })
    .await;
    let stored = store.vendor(&v.id).await.unwrap().unwrap().packages;
    let done: Vec<usize> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    for r in &results {
        if let Err(e) = r {
            assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
        }
    }
    assert!(!done.is_empty(), "{results:?}");
    for i in &done {
        assert!(
            stored.iter().any(|p| p.id.as_str() == format!("p{i}")),
            "p{i} lost: {stored:?}"
        );
    }
    assert_eq!(stored.len(), v.packages.len() + done.len());
}

async fn vendors_are_listed_by_id(store: S) {
    let (a, b) = (acme_vendor(&unique("v")), acme_vendor(&unique("v")));
    store.put_vendor(&b).await.unwrap();
    store.create_vendor(&a).await.unwrap();
    store.create_tenant(&tenant(), &token()).await.unwrap();
    let mut want = vec![a, b];
    want.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(store.list_vendors().await.unwrap(), want);
}

// --- creating assessments ---

async fn a_created_assessment_is_read_back_with_its_order_as_delivery_1(store: S) {
    let new = start(&tenant().id, "app-1");
    let id = new.assessment.id;
    assert_eq!(
        store.create_assessment(&new).await.unwrap(),
        CreateOutcome::Created
    );
    let mut want = new.assessment.clone();
    want.update_seq = 1;
    assert_eq!(store.assessment(id).await.unwrap(), Some(want));
    assert_eq!(open(&*store, id).await, vec![order_of(&new)]);
    let unknown = AssessmentId::new();
    assert_eq!(store.assessment(unknown).await.unwrap(), None);
    assert_eq!(open(&*store, unknown).await, vec![]);
}

async fn a_second_start_of_a_live_assessment_returns_the_existing_one(store: S) {
    let t = tenant();
    let (first, second) = (start(&t.id, "app-1"), start(&t.id, "app-1"));
    store.create_assessment(&first).await.unwrap();
    assert_eq!(
        store.create_assessment(&second).await.unwrap(),
        CreateOutcome::Existing(Box::new(read(&*store, first.assessment.id).await))
    );
    // Nothing of the second start was written, and the first one's order is intact.
    assert_eq!(store.assessment(second.assessment.id).await.unwrap(), None);
    assert_eq!(open(&*store, second.assessment.id).await, vec![]);
    assert_eq!(
        open(&*store, first.assessment.id).await,
        vec![order_of(&first)]
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
    let a = read(&*store, first.assessment.id).await;
    let cancel = only_change(&a, Status::Cancelled, vec![]);
    assert_eq!(store.apply(&cancel).await.unwrap(), ChangeOutcome::Applied);
    assert_eq!(
        store.create_assessment(&second).await.unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(
        store.create_assessment(&third).await.unwrap(),
        CreateOutcome::Existing(Box::new(read(&*store, second.assessment.id).await))
    );
    assert_eq!(read(&*store, a.id).await.status, Status::Cancelled);
    assert_eq!(
        open(&*store, second.assessment.id).await,
        vec![order_of(&second)]
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
            assert_eq!(open(&*store, *id).await, vec![]);
        }
    }
    assert_eq!(seqs(&open(&*store, winner.id).await), vec![1]);
}

async fn concurrent_starts_after_a_finished_assessment_take_it_over_once(store: S) {
    let t = tenant();
    let first = start(&t.id, "app-1");
    store.create_assessment(&first).await.unwrap();
    // The vendor refused the order: rejected, and the order settled, in one write.
    let a = read(&*store, first.assessment.id).await;
    let mut rejected = only_change(&a, Status::Rejected, vec![]);
    rejected.settle = Some(1);
    assert_eq!(
        store.apply(&rejected).await.unwrap(),
        ChangeOutcome::Applied
    );
    let starts: Vec<NewAssessment> = (0..RACERS).map(|_| start(&t.id, "app-1")).collect();
    let outcomes = race(|i| {
        let (store, new) = (store.clone(), starts[i].clone());
        async move { store.create_assessment(&new).await.unwrap() }
    })
    .await;
    assert_eq!(count(&outcomes, &CreateOutcome::Created), 1, "{outcomes:?}");
}

// --- changes: markers, changes and settlements in one write ---

async fn a_change_updates_the_assessment_and_appends_its_deliveries(store: S) {
    let a = created(&*store).await;
    let w = callback(&a, "msg_1", Status::InProgress, r#"{"n":1}"#);
    assert_eq!(store.apply(&w).await.unwrap(), ChangeOutcome::Applied);
    let b = read(&*store, a.id).await;
    assert_eq!(b.status, Status::InProgress);
    assert_eq!(b.status_label.as_deref(), Some("InProgress"));
    assert_eq!(b.update_seq, 2);
    assert_eq!(b.last_update_ms, at(&a));
    assert_eq!(b.updated_at_ms, at(&a));
    assert_eq!(b.version, a.version + 1);
    let deliveries = open(&*store, a.id).await;
    assert_eq!(seqs(&deliveries), vec![1, 2]);
    assert_eq!(
        deliveries[1],
        Delivery {
            assessment_id: a.id,
            seq: 2,
            kind: DeliveryKind::AtsUpdate,
            body: r#"{"n":1}"#.into(),
            state: DeliveryState::Pending,
            attempts: 0,
            created_ms: at(&a),
            next_attempt_ms: at(&a),
            lease_until_ms: Timestamp::EPOCH,
            last_error: None,
        }
    );
}

async fn a_change_keeps_what_it_does_not_carry(store: S) {
    let a = created(&*store).await;
    let mut w = only_change(&a, Status::Ordered, vec![]);
    if let Some(c) = w.change.as_mut() {
        c.vendor_reference = Some("ACME-42".into());
        c.update_ms = None;
    }
    assert_eq!(store.apply(&w).await.unwrap(), ChangeOutcome::Applied);
    let b = read(&*store, a.id).await;
    assert_eq!(b.vendor_reference.as_deref(), Some("ACME-42"));
    assert_eq!((b.last_update_ms, b.update_seq), (a.last_update_ms, 1));
    let mut w = only_change(&b, Status::Rejected, vec![]);
    if let Some(c) = w.change.as_mut() {
        c.rejection_message = Some("Package not available in CA".into());
    }
    assert_eq!(store.apply(&w).await.unwrap(), ChangeOutcome::Applied);
    let c = read(&*store, a.id).await;
    assert_eq!(c.vendor_reference.as_deref(), Some("ACME-42"));
    assert_eq!(
        c.rejection_message.as_deref(),
        Some("Package not available in CA")
    );
    assert_eq!(c.last_update_ms, at(&b));
    assert_eq!(c.version, a.version + 2);
}

async fn deliveries_get_consecutive_sequence_numbers_across_changes(store: S) {
    let a = created(&*store).await;
    // Up to twelve, so that the order has to hold past 9 → 10.
    let mut bodies: Vec<String> = Vec::new();
    for batch in [2, 1, 3, 5] {
        let b = read(&*store, a.id).await;
        let deliveries: Vec<NewDelivery> = (0..batch)
            .map(|i| {
                let body = format!("v{}-{i}", b.version);
                bodies.push(body.clone());
                let mut d = update(&body, at(&b));
                if i % 2 == 1 {
                    d.kind = DeliveryKind::VendorCancel;
                }
                d
            })
            .collect();
        let w = only_change(&b, Status::InProgress, deliveries);
        assert_eq!(store.apply(&w).await.unwrap(), ChangeOutcome::Applied);
    }
    let deliveries = open(&*store, a.id).await;
    assert_eq!(seqs(&deliveries), (1..=12).collect::<Vec<u64>>());
    let got: Vec<&str> = deliveries[1..].iter().map(|d| d.body.as_str()).collect();
    assert_eq!(got, bodies);
    assert!(deliveries.iter().all(|d| d.assessment_id == a.id));
    assert_eq!(deliveries[2].kind, DeliveryKind::VendorCancel);
    assert_eq!(read(&*store, a.id).await.update_seq, 12);
}

async fn a_repeated_webhook_id_is_a_duplicate_and_changes_nothing(store: S) {
    let a = created(&*store).await;
    apply(&*store, a.id, "msg_1", "u1").await;
    let b = read(&*store, a.id).await;
    // Redelivered, even with a fresh version and another status: still the same message.
    let again = callback(&b, "msg_1", Status::Completed, "u2");
    assert_eq!(store.apply(&again).await.unwrap(), ChangeOutcome::Duplicate);
    // On a stale version too: the duplicate is what the caller must hear.
    let stale = callback(&a, "msg_1", Status::Completed, "u2");
    assert_eq!(store.apply(&stale).await.unwrap(), ChangeOutcome::Duplicate);
    assert_eq!(read(&*store, a.id).await, b);
    assert_eq!(seqs(&open(&*store, a.id).await), vec![1, 2]);
}

async fn the_same_webhook_id_from_another_vendor_is_not_a_duplicate(store: S) {
    let a = created(&*store).await;
    apply(&*store, a.id, "msg_1", "u1").await;
    let mut w = callback(&read(&*store, a.id).await, "msg_1", Status::Completed, "u2");
    if let Some(m) = w.marker.as_mut() {
        m.vendor_id = VendorId::parse("other-vendor").unwrap();
    }
    assert_eq!(store.apply(&w).await.unwrap(), ChangeOutcome::Applied);
}

async fn a_change_on_a_stale_version_is_a_conflict_and_leaves_no_marker(store: S) {
    let a = created(&*store).await;
    apply(&*store, a.id, "msg_1", "u1").await;
    let stale = callback(&a, "msg_2", Status::Completed, "u2");
    assert_eq!(store.apply(&stale).await.unwrap(), ChangeOutcome::Conflict);
    let b = read(&*store, a.id).await;
    assert_eq!((b.status, b.update_seq), (Status::InProgress, 2));
    assert_eq!(seqs(&open(&*store, a.id).await), vec![1, 2]);
    // Re-read and decided again: the same webhook-id now applies, so no marker was left behind.
    let fresh = callback(&b, "msg_2", Status::Completed, "u2");
    assert_eq!(store.apply(&fresh).await.unwrap(), ChangeOutcome::Applied);
    assert_eq!(read(&*store, a.id).await.status, Status::Completed);
}

/// A change carries the snapshot it was decided on (version and `update_seq`) instead of the
/// store reading it again: the two must belong together, or nothing is written.
async fn a_change_whose_update_seq_is_not_its_snapshots_is_a_conflict(store: S) {
    let a = created(&*store).await;
    for wrong in [a.update_seq - 1, a.update_seq + 1] {
        let mut w = callback(&a, "msg_1", Status::InProgress, "u1");
        if let Some(c) = w.change.as_mut() {
            c.expected_update_seq = wrong;
        }
        assert_eq!(store.apply(&w).await.unwrap(), ChangeOutcome::Conflict);
        let b = read(&*store, a.id).await;
        assert_eq!((b.version, b.update_seq), (a.version, a.update_seq));
        assert_eq!(seqs(&open(&*store, a.id).await), vec![1]);
    }
    // The right snapshot applies, and the marker of the refused attempts was not left behind.
    let w = callback(&a, "msg_1", Status::InProgress, "u1");
    assert_eq!(store.apply(&w).await.unwrap(), ChangeOutcome::Applied);
    assert_eq!(seqs(&open(&*store, a.id).await), vec![1, 2]);
}

async fn a_change_for_an_unknown_assessment_is_a_conflict_and_writes_nothing(store: S) {
    let mut ghost = start(&tenant().id, "app-1").assessment;
    ghost.id = AssessmentId::new();
    let w = callback(&ghost, "msg_1", Status::InProgress, "u1");
    assert_eq!(store.apply(&w).await.unwrap(), ChangeOutcome::Conflict);
    assert_eq!(
        store.apply(&only_settle(ghost.id, 1)).await.unwrap(),
        ChangeOutcome::Conflict
    );
    assert_eq!(store.assessment(ghost.id).await.unwrap(), None);
    assert_eq!(open(&*store, ghost.id).await, vec![]);
    // No marker was left behind either.
    let mut marker_only = w.clone();
    marker_only.change = None;
    assert_eq!(
        store.apply(&marker_only).await.unwrap(),
        ChangeOutcome::Applied
    );
}

async fn a_marker_alone_is_recorded_once(store: S) {
    let a = created(&*store).await;
    let w = ChangeWrite {
        assessment_id: a.id,
        marker: Some(marker("msg_1")),
        change: None,
        settle: None,
    };
    assert_eq!(store.apply(&w).await.unwrap(), ChangeOutcome::Applied);
    assert_eq!(read(&*store, a.id).await, a);
    assert_eq!(seqs(&open(&*store, a.id).await), vec![1]);
    assert_eq!(store.apply(&w).await.unwrap(), ChangeOutcome::Duplicate);
}

async fn a_change_without_a_label_removes_the_previous_label(store: S) {
    let a = created(&*store).await;
    apply(&*store, a.id, "msg_1", "u1").await;
    let mut w = callback(&read(&*store, a.id).await, "msg_2", Status::Completed, "u2");
    if let Some(c) = w.change.as_mut() {
        c.status_label = None;
    }
    assert_eq!(store.apply(&w).await.unwrap(), ChangeOutcome::Applied);
    let b = read(&*store, a.id).await;
    assert_eq!((b.status, b.status_label), (Status::Completed, None));
}

async fn settling_a_delivery_alone_takes_it_out_of_the_queue_once(store: S) {
    let a = created(&*store).await;
    assert_eq!(
        store.apply(&only_settle(a.id, 1)).await.unwrap(),
        ChangeOutcome::Applied
    );
    assert_eq!(open(&*store, a.id).await, vec![]);
    assert_eq!(read(&*store, a.id).await, a);
    assert_eq!(
        due_once(&*store, Timestamp::MAX, 10, <[_]>::is_empty).await,
        vec![]
    );
    // Settled already, or never there: a conflict, and nothing changes.
    assert_eq!(
        store.apply(&only_settle(a.id, 1)).await.unwrap(),
        ChangeOutcome::Conflict
    );
    assert_eq!(
        store.apply(&only_settle(a.id, 2)).await.unwrap(),
        ChangeOutcome::Conflict
    );
    assert!(
        !store
            .claim_delivery(a.id, 1, NOW + LEASE, NOW + 2 * LEASE)
            .await
            .unwrap()
    );
    assert_eq!(open(&*store, a.id).await, vec![]);
}

async fn a_vendor_answer_settles_the_order_and_changes_the_assessment_in_one_write(store: S) {
    let a = created(&*store).await;
    let answer = |a: &Assessment, webhook_id: &str| {
        let mut w = callback(a, webhook_id, Status::Ordered, "started");
        if let Some(c) = w.change.as_mut() {
            c.vendor_reference = Some("ACME-42".into());
        }
        w.settle = Some(1);
        w
    };
    assert_eq!(
        store.apply(&answer(&a, "msg_1")).await.unwrap(),
        ChangeOutcome::Applied
    );
    let b = read(&*store, a.id).await;
    assert_eq!(
        (b.status, b.vendor_reference.as_deref(), b.update_seq),
        (Status::Ordered, Some("ACME-42"), 2)
    );
    assert_eq!(seqs(&open(&*store, a.id).await), vec![2]);
    // The same answer again on the fresh version: the order is settled, so it conflicts, and
    // neither its change nor its marker was written.
    assert_eq!(
        store.apply(&answer(&b, "msg_2")).await.unwrap(),
        ChangeOutcome::Conflict
    );
    assert_eq!(read(&*store, a.id).await, b);
    assert_eq!(seqs(&open(&*store, a.id).await), vec![2]);
    let mut marker_only = answer(&b, "msg_2");
    (marker_only.change, marker_only.settle) = (None, None);
    assert_eq!(
        store.apply(&marker_only).await.unwrap(),
        ChangeOutcome::Applied
    );
    // Its first webhook-id is still a duplicate, whatever else the write carries.
    assert_eq!(
        store.apply(&answer(&b, "msg_1")).await.unwrap(),
        ChangeOutcome::Duplicate
    );
}

async fn concurrent_changes_with_the_same_webhook_id_apply_once(store: S) {
    let a = created(&*store).await;
    let w = callback(&a, "msg_1", Status::InProgress, "u1");
    let outcomes = race(|_| {
        let (store, w) = (store.clone(), w.clone());
        async move { store.apply(&w).await.unwrap() }
    })
    .await;
    assert_eq!(count(&outcomes, &ChangeOutcome::Applied), 1, "{outcomes:?}");
    assert_eq!(read(&*store, a.id).await.update_seq, 2);
    assert_eq!(seqs(&open(&*store, a.id).await), vec![1, 2]);
}

async fn concurrent_changes_on_the_same_version_apply_once(store: S) {
    let a = created(&*store).await;
    let outcomes = race(|i| {
        let body = format!("u{i}");
        let w = callback(&a, &format!("msg_{i}"), Status::InProgress, &body);
        let store = store.clone();
        async move { (store.apply(&w).await.unwrap(), body) }
    })
    .await;
    let applied: Vec<&str> = outcomes
        .iter()
        .filter(|(o, _)| *o == ChangeOutcome::Applied)
        .map(|(_, body)| body.as_str())
        .collect();
    assert_eq!(applied.len(), 1, "{outcomes:?}");
    let conflicts = outcomes
        .iter()
        .filter(|(o, _)| *o == ChangeOutcome::Conflict)
        .count();
    assert_eq!(conflicts, RACERS - 1, "{outcomes:?}");
    let deliveries = open(&*store, a.id).await;
    assert_eq!(seqs(&deliveries), vec![1, 2]);
    assert_eq!(deliveries[1].body, applied[0]);
    assert_eq!(read(&*store, a.id).await.update_seq, 2);
}

async fn concurrent_settlements_of_one_delivery_apply_once(store: S) {
    let a = created(&*store).await;
    let outcomes = race(|_| {
        let store = store.clone();
        async move { store.apply(&only_settle(a.id, 1)).await.unwrap() }
    })
    .await;
    assert_eq!(count(&outcomes, &ChangeOutcome::Applied), 1, "{outcomes:?}");
    assert_eq!(
        count(&outcomes, &ChangeOutcome::Conflict),
        RACERS - 1,
        "{outcomes:?}"
    );
}

// --- the delivery queue ---

async fn the_creator_holds_the_order_lease_until_it_expires(store: S) {
    let a = created(&*store).await;
    assert!(
        !store
            .claim_delivery(a.id, 1, NOW, NOW + LEASE)
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_delivery(a.id, 1, NOW + LEASE - MS, NOW + 2 * LEASE)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_delivery(a.id, 1, NOW + LEASE, NOW + 2 * LEASE)
            .await
            .unwrap()
    );
    // The new holder's lease is held in turn.
    assert!(
        !store
            .claim_delivery(a.id, 1, NOW + LEASE + MS, NOW + 3 * LEASE)
            .await
            .unwrap()
    );
    let order = delivery(&*store, a.id, 1).await;
    assert_eq!((order.lease_until_ms, order.attempts), (NOW + 2 * LEASE, 1));
}

async fn only_one_of_concurrent_claims_wins_and_counts_an_attempt(store: S) {
    let a = created(&*store).await;
    apply(&*store, a.id, "msg_1", "u1").await;
    let claims = race(|_| {
        let store = store.clone();
        async move {
            store
                .claim_delivery(a.id, 2, NOW, NOW + LEASE)
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(count(&claims, &true), 1, "{claims:?}");
    let d = delivery(&*store, a.id, 2).await;
    assert_eq!((d.attempts, d.lease_until_ms), (1, NOW + LEASE));
}

async fn a_failed_attempt_releases_the_lease_and_is_due_again_at_its_retry_time(store: S) {
    let a = created(&*store).await;
    apply(&*store, a.id, "msg_1", "u1").await;
    assert!(
        store
            .claim_delivery(a.id, 2, NOW, NOW + LEASE)
            .await
            .unwrap()
    );
    let retry = NOW + 5 * LEASE;
    store
        .delivery_failed(a.id, 2, "Ashby answered 503", &Retry::At(retry))
        .await
        .unwrap();
    let d = delivery(&*store, a.id, 2).await;
    assert_eq!(d.state, DeliveryState::Pending);
    assert_eq!(
        (d.lease_until_ms, d.next_attempt_ms),
        (Timestamp::EPOCH, retry)
    );
    assert_eq!(d.last_error.as_deref(), Some("Ashby answered 503"));
    // Released: claimable at once (the caller decides whether it is due).
    assert!(
        store
            .claim_delivery(a.id, 2, NOW + MS, NOW + LEASE)
            .await
            .unwrap()
    );
    assert_eq!(delivery(&*store, a.id, 2).await.attempts, 2);
    // Due at its retry time, not before; the order (due at NOW) stays due meanwhile.
    let order = due_ref(a.id, 1, NOW);
    let before = due_once(&*store, retry - ms(1), 10, |d| d == [order]).await;
    assert_eq!(before, vec![order]);
    let want = vec![order, due_ref(a.id, 2, retry)];
    assert_eq!(due_once(&*store, retry, 10, |d| d == want).await, want);
}

async fn a_delivered_delivery_is_not_open_due_claimable_or_stuck(store: S) {
    let a = created(&*store).await;
    apply(&*store, a.id, "msg_1", "u1").await;
    apply(&*store, a.id, "msg_2", "u2").await;
    assert!(
        store
            .claim_delivery(a.id, 2, NOW, NOW + LEASE)
            .await
            .unwrap()
    );
    store
        .delivery_failed(a.id, 2, "timeout", &Retry::At(NOW))
        .await
        .unwrap();
    assert!(
        store
            .claim_delivery(a.id, 2, NOW, NOW + LEASE)
            .await
            .unwrap()
    );
    store.delivery_succeeded(a.id, 2).await.unwrap();
    // Idempotent, and a late failure report or redelivery cannot bring it back.
    store.delivery_succeeded(a.id, 2).await.unwrap();
    store
        .delivery_failed(a.id, 2, "late", &Retry::Dead("late".into()))
        .await
        .unwrap();
    assert!(!store.redeliver(a.id, 2, NOW).await.unwrap());
    assert_eq!(seqs(&open(&*store, a.id).await), vec![1, 3]);
    assert!(
        !store
            .claim_delivery(a.id, 2, NOW + 10 * LEASE, NOW + 11 * LEASE)
            .await
            .unwrap()
    );
    // Delivery 3 was written by the second change, at NOW + ms(2) s (see `at`).
    let want = vec![due_ref(a.id, 1, NOW), due_ref(a.id, 3, NOW + ms(2_000))];
    assert_eq!(
        due_once(&*store, Timestamp::MAX, 10, |d| d == want).await,
        want
    );
    assert_eq!(stuck_once(&*store, 10, <[_]>::is_empty).await, vec![]);
}

async fn parked_and_dead_deliveries_are_stuck_until_redelivered(store: S) {
    let a = created(&*store).await;
    apply(&*store, a.id, "msg_1", "u1").await;
    apply(&*store, a.id, "msg_2", "u2").await;
    assert!(
        store
            .claim_delivery(a.id, 3, NOW, NOW + LEASE)
            .await
            .unwrap()
    );
    let parked = Retry::Park("no Ashby API key".into());
    store
        .delivery_failed(a.id, 3, "401", &parked)
        .await
        .unwrap();
    let dead = Retry::Dead("undelivered after 72 h".into());
    store.delivery_failed(a.id, 2, "503", &dead).await.unwrap();
    let deliveries = open(&*store, a.id).await;
    assert_eq!(seqs(&deliveries), vec![1, 2, 3]);
    let (d2, d3) = (&deliveries[1], &deliveries[2]);
    assert_eq!(
        d2.state,
        DeliveryState::Dead("undelivered after 72 h".into())
    );
    assert_eq!(d3.state, DeliveryState::Parked("no Ashby API key".into()));
    assert_eq!((d3.lease_until_ms, d3.attempts), (Timestamp::EPOCH, 1));
    assert_eq!(d3.last_error.as_deref(), Some("401"));
    // Stuck, oldest first (2 was created before 3), and not due or claimable.
    let want = vec![d2.clone(), d3.clone()];
    assert_eq!(stuck_once(&*store, 10, |s| s == want).await, want);
    assert_eq!(stuck_once(&*store, 1, |s| s == &want[..1]).await, want[..1]);
    let order = vec![due_ref(a.id, 1, NOW)];
    assert_eq!(
        due_once(&*store, Timestamp::MAX, 10, |d| d == order).await,
        order
    );
    assert!(
        !store
            .claim_delivery(a.id, 3, NOW + LEASE, NOW + 2 * LEASE)
            .await
            .unwrap()
    );
    // A failure reported for a stopped delivery changes nothing.
    store
        .delivery_failed(a.id, 3, "late", &Retry::At(NOW))
        .await
        .unwrap();
    assert_eq!(delivery(&*store, a.id, 3).await, *d3);
    // Redelivered: pending, due now, no lease, out of the stuck list; only once.
    let now = NOW + 9 * LEASE;
    assert!(store.redeliver(a.id, 3, now).await.unwrap());
    assert!(!store.redeliver(a.id, 3, now).await.unwrap());
    assert!(!store.redeliver(a.id, 1, now).await.unwrap());
    let d = delivery(&*store, a.id, 3).await;
    assert_eq!(d.state, DeliveryState::Pending);
    assert_eq!(
        (d.next_attempt_ms, d.lease_until_ms),
        (now, Timestamp::EPOCH)
    );
    // As if new: the maximum age and the backoff count from the redelivery.
    assert_eq!((d.created_ms, d.attempts), (now, 0));
    let want = vec![due_ref(a.id, 1, NOW), due_ref(a.id, 3, now)];
    assert_eq!(due_once(&*store, now, 10, |d| d == want).await, want);
    assert_eq!(
        stuck_once(&*store, 10, |s| s == [d2.clone()]).await,
        vec![d2.clone()]
    );
    assert!(
        store
            .claim_delivery(a.id, 3, now, now + LEASE)
            .await
            .unwrap()
    );
    assert!(store.redeliver(a.id, 2, now).await.unwrap());
    assert_eq!(stuck_once(&*store, 10, <[_]>::is_empty).await, vec![]);
}

async fn due_deliveries_come_by_next_attempt_up_to_the_limit(store: S) {
    let (a, b, c) = (
        created(&*store).await,
        created(&*store).await,
        created(&*store).await,
    );
    for (x, t) in [
        (&a, NOW + ms(300)),
        (&b, NOW + ms(100)),
        (&c, NOW + ms(200)),
    ] {
        store
            .delivery_failed(x.id, 1, "HTTP 500", &Retry::At(t))
            .await
            .unwrap();
    }
    let all = vec![
        due_ref(b.id, 1, NOW + ms(100)),
        due_ref(c.id, 1, NOW + ms(200)),
        due_ref(a.id, 1, NOW + ms(300)),
    ];
    assert_eq!(
        due_once(&*store, NOW + ms(1_000), 10, |d| d == all).await,
        all
    );
    assert_eq!(
        due_once(&*store, NOW + ms(250), 10, |d| d == &all[..2]).await,
        all[..2]
    );
    assert_eq!(
        due_once(&*store, NOW + ms(1_000), 2, |d| d == &all[..2]).await,
        all[..2]
    );
    assert_eq!(
        due_once(&*store, NOW + ms(99), 10, <[_]>::is_empty).await,
        vec![]
    );
    assert_eq!(
        store.due_deliveries(NOW + ms(1_000), 0).await.unwrap(),
        vec![]
    );
    // The oldest pending one, as the scheduler reports it.
    assert_eq!(
        due_once(&*store, Timestamp::MAX, 1, |d| d == &all[..1]).await,
        all[..1]
    );
}

async fn writes_to_an_unknown_delivery_change_nothing(store: S) {
    let a = created(&*store).await;
    let unknown = AssessmentId::new();
    for (id, seq) in [(a.id, 2), (unknown, 1)] {
        assert!(
            !store
                .claim_delivery(id, seq, NOW, NOW + LEASE)
                .await
                .unwrap()
        );
        store.delivery_succeeded(id, seq).await.unwrap();
        store
            .delivery_failed(id, seq, "x", &Retry::At(NOW))
            .await
            .unwrap();
        store
            .delivery_failed(id, seq, "x", &Retry::Park("x".into()))
            .await
            .unwrap();
        assert!(!store.redeliver(id, seq, NOW).await.unwrap());
    }
    assert_eq!(seqs(&open(&*store, a.id).await), vec![1]);
    assert_eq!(open(&*store, unknown).await, vec![]);
    assert_eq!(store.assessment(unknown).await.unwrap(), None);
    let order = vec![due_ref(a.id, 1, NOW)];
    assert_eq!(
        due_once(&*store, Timestamp::MAX, 10, |d| d == order).await,
        order
    );
    assert_eq!(stuck_once(&*store, 10, <[_]>::is_empty).await, vec![]);
}

// --- the store's clock ---

#[tokio::test]
async fn memory_a_token_is_stamped_by_the_stores_clock() {
    let clock = Arc::new(ManualClock::at(NOW));
    a_token_is_stamped_by_the_stores_clock(
        Arc::new(MemoryStore::with_clock(clock.clone())),
        &clock,
    )
    .await;
}

#[tokio::test]
async fn dynamodb_a_token_is_stamped_by_the_stores_clock() {
    let clock = Arc::new(ManualClock::at(NOW));
    let (client, table) = hub_tests::aws::fresh_table().await;
    let store = DynamoDbStore::with_clock(client, table, clock.clone());
    a_token_is_stamped_by_the_stores_clock(Arc::new(store), &clock).await;
}

/// When a token was added is the store's to say, by its injected clock (the only time a store
/// reads itself).
async fn a_token_is_stamped_by_the_stores_clock(store: S, clock: &ManualClock) {
    let (t, first, second, replaced) = (tenant(), token(), token(), token());
    store.create_tenant(&t, &first).await.unwrap();
    clock.advance(ms(5_000));
    store.add_tenant_token(&t.id, &second).await.unwrap();
    let stamped = |tokens: Vec<hub::ports::TenantToken>| -> Vec<(TokenHash, Timestamp)> {
        tokens.iter().map(|t| (t.hash, t.added_at_ms)).collect()
    };
    assert_eq!(
        stamped(store.tenant_tokens(&t.id).await.unwrap()),
        vec![(first, NOW), (second, NOW + ms(5_000))]
    );
    clock.advance(ms(5_000));
    store.put_tenant(&t, &replaced).await.unwrap();
    assert_eq!(
        stamped(store.tenant_tokens(&t.id).await.unwrap()),
        vec![(replaced, NOW + ms(10_000))]
    );
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
async fn dynamodb_a_revoked_token_leaves_no_item_and_a_leftover_one_finds_nothing() {
    let (client, table) = hub_tests::aws::fresh_table().await;
    let store = DynamoDbStore::new(client.clone(), table.clone());
    let (t, old, new) = (tenant(), token(), token());
    store.create_tenant(&t, &old).await.unwrap();
    store.add_tenant_token(&t.id, &new).await.unwrap();
    store.revoke_tenant_token(&t.id, &old).await.unwrap();
    let old_pk = format!("TOKEN#{}", old.to_hex());
    assert_eq!(
        raw_item(&client, &table, old_pk.clone(), "TOKEN").await,
        None
    );
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
async fn dynamodb_a_tenant_stored_with_a_single_token_hash_keeps_working_and_can_rotate() {
    // The item shape before tenants could hold several tokens: `token_hash`, no `tokens`, no `rev`.
    let (client, table) = hub_tests::aws::fresh_table().await;
    let store = DynamoDbStore::new(client.clone(), table.clone());
    let (t, old, new) = (tenant(), token(), token());
    let pk = format!("TENANT#{}", t.id);
    client
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S(pk.clone()))
        .item("sk", AttributeValue::S("TENANT".into()))
        .item("name", AttributeValue::S(t.name.clone()))
        .item(
            "ashby_base_url",
            AttributeValue::S(t.ashby_base_url.to_string()),
        )
        .item(
            "packages",
            AttributeValue::L(vec![AttributeValue::S(package().to_string())]),
        )
        .item("disabled", AttributeValue::Bool(false))
        .item("token_hash", AttributeValue::S(old.to_hex()))
        .send()
        .await
        .unwrap();
    client
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S(format!("TOKEN#{}", old.to_hex())))
        .item("sk", AttributeValue::S("TOKEN".into()))
        .item("tenant_id", AttributeValue::S(t.id.to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(store.tenant_by_token(&old).await.unwrap(), Some(t.clone()));
    assert_eq!(
        store.add_tenant_token(&t.id, &new).await.unwrap(),
        RegistryOutcome::Done
    );
    assert_eq!(store.tenant_by_token(&old).await.unwrap(), Some(t.clone()));
    assert_eq!(store.tenant_by_token(&new).await.unwrap(), Some(t.clone()));
    store.revoke_tenant_token(&t.id, &old).await.unwrap();
    assert_eq!(store.tenant_by_token(&old).await.unwrap(), None);
    let item = raw_item(&client, &table, pk, "TENANT").await.unwrap();
    assert!(!item.contains_key("token_hash"), "{:?}", item.keys());
    assert_eq!(store.tenant_by_token(&new).await.unwrap(), Some(t));
}

type Item = std::collections::HashMap<String, AttributeValue>;

/// Every item of the table, read consistently.
async fn all_items(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        items.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return items,
        }
    }
}

/// The `due` index's entries (`gsi1pk`, `gsi1sk`), read from the index itself.
async fn index_entries(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let items = client
        .scan()
        .table_name(table)
        .index_name("due")
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let text = |item: &Item, name: &str| match item.get(name) {
        Some(AttributeValue::S(v)) => v.clone(),
        other => panic!("{name}: {other:?}"),
    };
    let mut entries: Vec<(String, String)> = items
        .iter()
        .map(|item| (text(item, "gsi1pk"), text(item, "gsi1sk")))
        .collect();
    entries.sort();
    Ok(entries)
}

fn delivery_sk(seq: u64) -> String {
    format!("DELIVERY#{seq:020}")
}

#[tokio::test]
async fn dynamodb_candidate_pii_is_only_on_the_expiring_order_delivery() {
    let (client, table) = hub_tests::aws::fresh_table().await;
    let store = DynamoDbStore::new(client.clone(), table.clone());
    let new = start(&tenant().id, "app-1");
    store.create_assessment(&new).await.unwrap();
    let items = all_items(&client, &table).await;
    assert_eq!(items.len(), 3, "start key, assessment, order");
    let order_sk = AttributeValue::S(delivery_sk(1));
    for item in items {
        let holds_pii = format!("{item:?}").contains("ada@example.com");
        let is_order = item.get("sk") == Some(&order_sk);
        assert_eq!(holds_pii, is_order, "{:?}", item.get("sk"));
        assert_eq!(item.contains_key("expires_at"), is_order);
    }
    let order = raw_item(
        &client,
        &table,
        format!("ASSESSMENT#{}", new.assessment.id),
        &delivery_sk(1),
    )
    .await
    .unwrap();
    let expires_at = new.order.expires_at_s.unwrap().to_string();
    assert_eq!(
        order.get("expires_at"),
        Some(&AttributeValue::N(expires_at))
    );
}

#[tokio::test]
async fn dynamodb_the_due_index_holds_pending_and_stuck_deliveries_only() {
    let (client, table) = hub_tests::aws::fresh_table().await;
    let store = DynamoDbStore::new(client.clone(), table.clone());
    let a = created(&store).await;
    apply(&store, a.id, "msg_1", "u1").await;
    apply(&store, a.id, "msg_2", "u2").await;
    store.delivery_succeeded(a.id, 2).await.unwrap();
    let parked = Retry::Park("no key".into());
    store
        .delivery_failed(a.id, 3, "401", &parked)
        .await
        .unwrap();
    let entry = |t: Timestamp, seq: u64| format!("{:020}#{}#{seq:020}", t.as_ms(), a.id);
    // Delivery 3 was created at NOW + ms(2) s (see `at`): stuck entries sort by creation.
    let want = vec![
        ("DUE".to_owned(), entry(NOW, 1)),
        ("STUCK".to_owned(), entry(NOW + ms(2_000), 3)),
    ];
    let got = eventually(|| index_entries(&client, &table), |e| *e == want).await;
    assert_eq!(got, want);
    // The delivered one keeps no index attribute at all.
    let delivered = raw_item(
        &client,
        &table,
        format!("ASSESSMENT#{}", a.id),
        &delivery_sk(2),
    )
    .await
    .unwrap();
    assert!(!delivered.contains_key("gsi1pk") && !delivered.contains_key("gsi1sk"));
    // A settlement in a change removes the entry the same way.
    assert_eq!(
        store.apply(&only_settle(a.id, 1)).await.unwrap(),
        ChangeOutcome::Applied
    );
    let want = vec![("STUCK".to_owned(), entry(NOW + ms(2_000), 3))];
    let got = eventually(|| index_entries(&client, &table), |e| *e == want).await;
    assert_eq!(got, want);
}

#[tokio::test]
async fn dynamodb_writes_to_unknown_deliveries_leave_no_item() {
    let (client, table) = hub_tests::aws::fresh_table().await;
    let store = DynamoDbStore::new(client.clone(), table.clone());
    let a = created(&store).await;
    let before = all_items(&client, &table).await;
    let unknown = AssessmentId::new();
    for (id, seq) in [(a.id, 2), (unknown, 1)] {
        assert!(
            !store
                .claim_delivery(id, seq, NOW, NOW + LEASE)
                .await
                .unwrap()
        );
        store.delivery_succeeded(id, seq).await.unwrap();
        for retry in [Retry::At(NOW), Retry::Dead("x".into())] {
            store.delivery_failed(id, seq, "x", &retry).await.unwrap();
        }
        assert!(!store.redeliver(id, seq, NOW).await.unwrap());
        assert_eq!(
            store.apply(&only_settle(id, seq)).await.unwrap(),
            ChangeOutcome::Conflict
        );
    }
    assert_eq!(all_items(&client, &table).await.len(), before.len());
}

#[tokio::test]
async fn dynamodb_a_table_made_before_the_due_index_is_given_it() {
    let client = aws_sdk_dynamodb::Client::new(&hub_tests::aws::sdk_config().await);
    a_table_made_before_the_due_index_is_given_it(&client).await;
}

/// The same with DynamoDB's timing, which moto does not have: a new table, and an index added to
/// a table, are being created for a while, and a table being created refuses writes.
#[tokio::test]
async fn dynamodb_a_table_made_before_the_due_index_is_given_it_when_activation_takes_time() {
    let proxy = AwsProxy::start(&hub_tests::aws::endpoint()).await;
    proxy.activate_after(Duration::from_secs(5));
    let client = aws_sdk_dynamodb::Client::new(&hub_tests::aws::sdk_config_at(proxy.url()).await);
    a_table_made_before_the_due_index_is_given_it(&client).await;
    assert_met_a_table_and_an_index_being_created(&proxy);
}

async fn a_table_made_before_the_due_index_is_given_it(client: &aws_sdk_dynamodb::Client) {
    let table = unique("hub-test-old");
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |name: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .send()
        .await
        .unwrap();
    // DynamoDB creates a table in the background and refuses writes until it is active.
    client
        .wait_until_table_exists()
        .table_name(&table)
        .wait(Duration::from_secs(120))
        .await
        .unwrap();
    let store = DynamoDbStore::new(client.clone(), table.clone());
    let a = created(&store).await;
    DynamoDbStore::create_table(client, &table).await.unwrap();
    assert_due_index(client, &table).await;
    // Deliveries written before the index existed are in it once it is built.
    let want = vec![due_ref(a.id, 1, NOW)];
    assert_eq!(
        due_once(&store, Timestamp::MAX, 10, |d| d == want).await,
        want
    );
}

#[tokio::test]
async fn dynamodb_creating_the_table_returns_once_the_table_and_its_index_are_active() {
    let proxy = AwsProxy::start(&hub_tests::aws::endpoint()).await;
    proxy.activate_after(Duration::from_secs(5));
    let client = aws_sdk_dynamodb::Client::new(&hub_tests::aws::sdk_config_at(proxy.url()).await);
    let table = unique("hub-test-slow");
    DynamoDbStore::create_table(&client, &table).await.unwrap();
    assert_due_index(&client, &table).await;
    let ttl = client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    assert_eq!(
        ttl.time_to_live_description()
            .and_then(|d| d.time_to_live_status()),
        Some(&TimeToLiveStatus::Enabled)
    );
    let store = DynamoDbStore::new(client.clone(), table.clone());
    let a = created(&store).await;
    let want = vec![due_ref(a.id, 1, NOW)];
    assert_eq!(
        due_once(&store, Timestamp::MAX, 10, |d| d == want).await,
        want
    );
    assert_met_a_table_and_an_index_being_created(&proxy);
}

/// That the proxy did report a table and an index as being created: the test above met
/// DynamoDB's timing, not moto's.
fn assert_met_a_table_and_an_index_being_created(proxy: &AwsProxy) {
    let described: Vec<serde_json::Value> = proxy
        .calls()
        .iter()
        .filter(|c| c.operation == "dynamodb:DescribeTable")
        .map(|c| c.response_json())
        .collect();
    let table_creating = described
        .iter()
        .any(|d| d["Table"]["TableStatus"] == "CREATING");
    let index_creating = described.iter().any(|d| {
        d["Table"]["GlobalSecondaryIndexes"]
            .as_array()
            .is_some_and(|i| i.iter().any(|i| i["IndexStatus"] == "CREATING"))
    });
    assert!(table_creating && index_creating, "{described:?}");
}

/// Which level retries a write caught in another transaction (`hub::retry`): a change is answered
/// `Conflict` at once, for its caller to decide again on a fresh read; a start, a claim or a
/// registry write tries `CONTENTION.tries` times inside the call, then is `Unavailable`.
#[tokio::test]
async fn dynamodb_a_change_caught_in_another_transaction_is_a_conflict_and_other_writes_retry_inside()
 {
    let proxy = AwsProxy::start(&hub_tests::aws::endpoint()).await;
    let (_, table) = hub_tests::aws::fresh_table().await;
    let client = aws_sdk_dynamodb::Client::new(&hub_tests::aws::sdk_config_at(proxy.url()).await);
    let store = DynamoDbStore::new(client, table);
    let a = created(&store).await;
    let t = tenant();
    store.create_tenant(&t, &token()).await.unwrap();
    let tries = hub::retry::CONTENTION.tries as usize;
    let sent = |op: &str| proxy.operations().iter().filter(|o| *o == op).count();
    proxy.set_fault(
        &["dynamodb:TransactWriteItems", "dynamodb:UpdateItem"],
        Fault::TransactionConflict,
    );

    proxy.reset();
    let w = callback(&a, "msg_1", Status::InProgress, "u1");
    assert_eq!(store.apply(&w).await, Ok(ChangeOutcome::Conflict));
    assert_eq!(
        sent("dynamodb:TransactWriteItems"),
        1,
        "apply does not retry"
    );

    let contended = |op: &str| {
        Some(StoreError::Unavailable(format!(
            "{op}: still contended after {tries} tries"
        )))
    };
    proxy.reset();
    assert_eq!(
        store.claim_delivery(a.id, 1, NOW, NOW + LEASE).await.err(),
        contended("claim_delivery")
    );
    assert_eq!(sent("dynamodb:UpdateItem"), tries);
    proxy.reset();
    assert_eq!(
        store.create_assessment(&start(&t.id, "app-2")).await.err(),
        contended("create_assessment")
    );
    assert_eq!(sent("dynamodb:TransactWriteItems"), tries);
    proxy.reset();
    assert_eq!(
        store.add_tenant_token(&t.id, &token()).await.err(),
        contended("add_tenant_token")
    );
    assert_eq!(sent("dynamodb:TransactWriteItems"), tries);
    proxy.reset();
    let renamed = store
        .update_tenant(&t.id, &|t: &mut Tenant| t.name = "Renamed".into())
        .await;
    assert_eq!(renamed.err(), contended("update_tenant"));
    assert_eq!(
        sent("dynamodb:UpdateItem"),
        tries,
        "no retry nested in a retry"
    );

    // Nothing was written meanwhile: once the other transaction is gone, the change applies.
    proxy.clear_fault();
    assert_eq!(read(&store, a.id).await, a);
    assert_eq!(store.apply(&w).await, Ok(ChangeOutcome::Applied));
}

/// The table has the `due` index: sparse keys `gsi1pk`/`gsi1sk`, keys only, active.
async fn assert_due_index(client: &aws_sdk_dynamodb::Client, table: &str) {
    let described = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .unwrap();
    let indexes = described.table().unwrap().global_secondary_indexes();
    assert_eq!(indexes.len(), 1);
    let due = &indexes[0];
    assert_eq!(due.index_name(), Some("due"));
    let keys: Vec<(&str, &KeyType)> = due
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type()))
        .collect();
    assert_eq!(
        keys,
        vec![("gsi1pk", &KeyType::Hash), ("gsi1sk", &KeyType::Range)]
    );
    assert_eq!(
        due.projection().and_then(|p| p.projection_type()),
        Some(&ProjectionType::KeysOnly)
    );
    assert_eq!(due.index_status(), Some(&IndexStatus::Active));
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
    assert_due_index(&client, &table).await;
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
    client
        .update_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(format!("ASSESSMENT#{}", a.id)))
        .key("sk", AttributeValue::S(delivery_sk(1)))
        .update_expression("SET #k = :v")
        .expression_attribute_names("#k", "kind")
        .expression_attribute_values(":v", AttributeValue::S("fax".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        store.open_deliveries(a.id).await,
        Err(StoreError::Corrupt("delivery attribute kind".into()))
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
    // The operation and DynamoDB's error code, never an item's contents.
    assert_eq!(
        store
            .claim_delivery(AssessmentId::new(), 1, NOW, NOW + LEASE)
            .await,
        Err(StoreError::Unavailable(
            "claim_delivery: ResourceNotFoundException".into()
        ))
    );
    assert_eq!(
        store.due_deliveries(NOW, 10).await,
        Err(StoreError::Unavailable(
            "due_deliveries: ResourceNotFoundException".into()
        ))
    );
    let w = callback(
        &start(&tenant().id, "app-1").assessment,
        "msg_1",
        Status::Completed,
        "u",
    );
    assert!(matches!(
        store.apply(&w).await,
        Err(StoreError::Unavailable(m)) if m.starts_with("apply: ")
    ));
}

// --- what the Greenhouse path adds ---

fn greenhouse_tenant() -> Tenant {
    Tenant {
        ats: hub::domain::Ats::Greenhouse,
        ..tenant()
    }
}

async fn a_greenhouse_tenant_keeps_its_ats_through_reads_lists_and_updates(store: S) {
    let (t, tok) = (greenhouse_tenant(), token());
    store.create_tenant(&t, &tok).await.unwrap();
    assert_eq!(store.tenant(&t.id).await.unwrap(), Some(t.clone()));
    assert_eq!(store.tenant_by_token(&tok).await.unwrap(), Some(t.clone()));
    let listed = store.list_tenants().await.unwrap();
    let entry = listed.iter().find(|e| e.tenant.id == t.id).expect("listed");
    assert_eq!(entry.tenant.ats, hub::domain::Ats::Greenhouse);
    // An update cannot move an account to another ATS.
    let updated = store
        .update_tenant(&t.id, &|x| {
            x.name = "Renamed".into();
            x.ats = hub::domain::Ats::Ashby;
        })
        .await
        .unwrap()
        .expect("tenant exists");
    assert_eq!(updated.ats, hub::domain::Ats::Greenhouse);
    assert_eq!(updated.name, "Renamed");
    assert_eq!(store.tenant(&t.id).await.unwrap(), Some(updated));
    // And an Ashby tenant stays Ashby the other way round.
    let (a, tok2) = (tenant(), token());
    store.put_tenant(&a, &tok2).await.unwrap();
    let kept = store
        .update_tenant(&a.id, &|x| x.ats = hub::domain::Ats::Greenhouse)
        .await
        .unwrap()
        .expect("tenant exists");
    assert_eq!(kept.ats, hub::domain::Ats::Ashby);
}

fn greenhouse_start(tenant: &TenantId, url: &str) -> NewAssessment {
    let mut new = start(tenant, &format!("greenhouse-url:{url}"));
    new.assessment.ats = hub::domain::Ats::Greenhouse;
    new.assessment.ats_url = Some(url.to_owned());
    new.keep_finished = true;
    new
}

async fn a_greenhouse_assessment_keeps_its_ats_url_summary_and_reported_errors(store: S) {
    let t = greenhouse_tenant();
    let url = format!("https://app.greenhouse.io/tests/{}", unique("t"));
    let new = greenhouse_start(&t.id, &url);
    store.create_assessment(&new).await.unwrap();
    let a = read(&*store, new.assessment.id).await;
    assert_eq!(a.ats, hub::domain::Ats::Greenhouse);
    assert_eq!(a.ats_url.as_deref(), Some(url.as_str()));
    assert_eq!((a.summary.clone(), a.ats_errors), (None, 0));

    let summary = hub::domain::Summary {
        label: "Clear".into(),
        report_url: Some("https://vendor.example/r/1".into()),
        score: Some(87.5),
        metadata: vec![
            (
                "Status".into(),
                hub::domain::FieldValue::Text("Clear".into()),
            ),
            ("Minutes".into(), hub::domain::FieldValue::Number(74.into())),
            ("Passed".into(), hub::domain::FieldValue::Bool(true)),
        ],
    };
    let mut w = only_change(&a, Status::Completed, vec![]);
    if let Some(c) = w.change.as_mut() {
        c.summary = Some(summary.clone());
    }
    assert_eq!(store.apply(&w).await.unwrap(), ChangeOutcome::Applied);
    let b = read(&*store, a.id).await;
    assert_eq!(b.summary.as_ref(), Some(&summary));

    // Two reports of an unusable reply: counted, the last kept, the summary untouched.
    for (n, text) in [(1, "test_status: first"), (2, "test_status: second")] {
        let cur = read(&*store, a.id).await;
        let mut w = only_change(&cur, Status::Completed, vec![]);
        if let Some(c) = w.change.as_mut() {
            c.ats_error = Some(text.into());
            c.status_label = cur.status_label.clone();
            c.update_ms = None;
        }
        assert_eq!(store.apply(&w).await.unwrap(), ChangeOutcome::Applied);
        let r = read(&*store, a.id).await;
        assert_eq!(r.ats_errors, n);
        assert_eq!(r.last_ats_error.as_deref(), Some(text));
        assert_eq!(r.summary.as_ref(), Some(&summary));
        assert_eq!(r.ats_url.as_deref(), Some(url.as_str()));
    }
}

async fn a_start_key_kept_after_the_end_answers_the_finished_assessment(store: S) {
    let t = greenhouse_tenant();
    let url = format!("https://app.greenhouse.io/tests/{}", unique("t"));
    let first = greenhouse_start(&t.id, &url);
    store.create_assessment(&first).await.unwrap();
    let a = read(&*store, first.assessment.id).await;
    let reject = only_change(&a, Status::Rejected, vec![]);
    assert_eq!(store.apply(&reject).await.unwrap(), ChangeOutcome::Applied);
    let again = greenhouse_start(&t.id, &url);
    assert_eq!(
        store.create_assessment(&again).await.unwrap(),
        CreateOutcome::Existing(Box::new(read(&*store, a.id).await))
    );
    assert_eq!(store.assessment(again.assessment.id).await.unwrap(), None);
}

async fn a_greenhouse_patch_delivery_is_queued_claimed_and_settled_like_the_others(store: S) {
    let t = greenhouse_tenant();
    let new = greenhouse_start(&t.id, "https://app.greenhouse.io/tests/1");
    store.create_assessment(&new).await.unwrap();
    let a = read(&*store, new.assessment.id).await;
    let mut patch = update(r#"{"url":"https://app.greenhouse.io/tests/1"}"#, at(&a));
    patch.kind = DeliveryKind::AtsPatch;
    let w = only_change(&a, Status::Completed, vec![patch]);
    assert_eq!(store.apply(&w).await.unwrap(), ChangeOutcome::Applied);
    let d = delivery(&*store, a.id, 2).await;
    assert_eq!(d.kind, DeliveryKind::AtsPatch);
    assert_eq!(d.body, r#"{"url":"https://app.greenhouse.io/tests/1"}"#);
    let now = at(&a);
    assert!(
        store
            .claim_delivery(a.id, 2, now, now + ms(30_000))
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_delivery(a.id, 2, now, now + ms(30_000))
            .await
            .unwrap()
    );
    store.delivery_succeeded(a.id, 2).await.unwrap();
    assert!(open(&*store, a.id).await.iter().all(|d| d.seq != 2));
    let timeline = store.deliveries(a.id).await.unwrap();
    assert_eq!(
        timeline
            .iter()
            .filter(|d| d.kind == DeliveryKind::AtsPatch)
            .count(),
        1
    );
}

// --- connect links and tenant health ---

const DAY: Duration = Duration::from_secs(86_400);

/// A link of `tenant` made at `created`, working for a week. Only its hash is kept: a test that
/// needs the code makes its own.
fn invite(tenant: &TenantId, created: Timestamp) -> Invite {
    Invite {
        hash: TokenHash::of(&generate_connect_code()),
        tenant_id: tenant.clone(),
        created_at_ms: created,
        expires_at_ms: created + DAY * 7,
        revoked_at_ms: None,
        token_shown_at_ms: None,
    }
}

/// A tenant made to await its customer: no token.
async fn awaiting(store: &dyn AdminStore) -> Tenant {
    let t = tenant();
    assert_eq!(
        store.create_tenant_awaiting(&t).await.unwrap(),
        RegistryOutcome::Done
    );
    t
}

/// A stored link of `tenant`, made at `NOW`.
/// Issues `token` on the link `invite` ("Show token" with `reveal`, else a replacement).
async fn issue(
    store: &dyn AdminStore,
    invite: &TokenHash,
    token: &TokenHash,
    reveal: bool,
    now: Timestamp,
) -> IssueOutcome {
    store
        .issue_connect_token(invite, token, reveal, now)
        .await
        .unwrap()
}

async fn link(store: &dyn AdminStore, tenant: &TenantId) -> Invite {
    let i = invite(tenant, NOW);
    assert_eq!(
        store.create_invite(&i).await.unwrap(),
        RegistryOutcome::Done
    );
    i
}

/// The tenant's health as the functions read it (with the account).
async fn health(store: &dyn AdminStore, id: &TenantId) -> TenantHealth {
    store
        .account(id)
        .await
        .unwrap()
        .expect("tenant exists")
        .health
}

/// The tenant `token` authenticates, if any.
async fn owner(store: &dyn AdminStore, token: &TokenHash) -> Option<TenantId> {
    store
        .account_by_token(token)
        .await
        .unwrap()
        .map(|a| a.tenant.id)
}

/// The tenant's token hashes in no particular order (tokens added in the same millisecond have
/// no order between them).
async fn token_set(store: &dyn AdminStore, id: &TenantId) -> Vec<TokenHash> {
    set(tokens_of(store, id).await)
}

fn set(tokens: impl IntoIterator<Item = TokenHash>) -> Vec<TokenHash> {
    let mut v: Vec<TokenHash> = tokens.into_iter().collect();
    v.sort_by_key(|h| h.to_hex());
    v
}

async fn read_invite(store: &dyn AdminStore, hash: &TokenHash) -> Invite {
    store.invite(hash).await.unwrap().expect("invite exists")
}

fn call(at: Timestamp) -> AtsCall {
    AtsCall {
        at_ms: at,
        route: "/assessment.list".into(),
    }
}

fn report(at: Timestamp, outcome: DeliveryHealth) -> DeliveryReport {
    DeliveryReport {
        at_ms: at,
        outcome,
        detail: format!("{} at {}", outcome.as_str(), at.as_ms()),
    }
}

async fn listed_health(store: &dyn AdminStore, id: &TenantId) -> TenantHealth {
    store
        .list_tenants()
        .await
        .unwrap()
        .into_iter()
        .find(|e| &e.tenant.id == id)
        .expect("listed")
        .health
}

async fn a_connect_link_is_stored_and_read_back_by_its_hash(store: S) {
    let t = awaiting(&*store).await;
    let i = link(&*store, &t.id).await;
    assert_eq!(store.invite(&i.hash).await.unwrap(), Some(i.clone()));
    let unknown = TokenHash::of(&generate_connect_code());
    assert_eq!(store.invite(&unknown).await.unwrap(), None);
}

async fn a_tenant_s_links_are_listed_newest_first_and_no_other_tenant_s(store: S) {
    let (t, other) = (awaiting(&*store).await, awaiting(&*store).await);
    let old = invite(&t.id, NOW);
    let new = invite(&t.id, NOW + DAY);
    let middle = invite(&t.id, NOW + ms(5));
    let theirs = invite(&other.id, NOW + ms(7));
    for i in [&middle, &theirs, &old, &new] {
        assert_eq!(store.create_invite(i).await.unwrap(), RegistryOutcome::Done);
    }
    assert_eq!(store.invites(&t.id).await.unwrap(), vec![new, middle, old]);
    assert_eq!(store.invites(&other.id).await.unwrap(), vec![theirs]);
    assert_eq!(store.invites(&tenant().id).await.unwrap(), vec![]);
}

async fn a_link_for_an_unknown_tenant_is_not_found_and_not_stored(store: S) {
    let ghost = tenant();
    let i = invite(&ghost.id, NOW);
    assert_eq!(
        store.create_invite(&i).await.unwrap(),
        RegistryOutcome::NotFound
    );
    assert_eq!(store.invite(&i.hash).await.unwrap(), None);
    assert_eq!(store.invites(&ghost.id).await.unwrap(), vec![]);
}

async fn revoking_a_link_by_its_id_keeps_the_first_revocation_time(store: S) {
    let t = awaiting(&*store).await;
    let (i, kept) = (link(&*store, &t.id).await, link(&*store, &t.id).await);
    assert_eq!(
        store
            .revoke_invite(&t.id, &i.id(), NOW + ms(10))
            .await
            .unwrap(),
        RegistryOutcome::Done
    );
    assert_eq!(
        read_invite(&*store, &i.hash).await.revoked_at_ms,
        Some(NOW + ms(10))
    );
    assert_eq!(
        store
            .revoke_invite(&t.id, &i.id(), NOW + ms(20))
            .await
            .unwrap(),
        RegistryOutcome::Done
    );
    let revoked = read_invite(&*store, &i.hash).await;
    assert_eq!(revoked.revoked_at_ms, Some(NOW + ms(10)));
    assert_eq!(
        revoked,
        Invite {
            revoked_at_ms: Some(NOW + ms(10)),
            ..i
        },
        "nothing else changes"
    );
    assert_eq!(read_invite(&*store, &kept.hash).await, kept);
}

async fn revoking_an_unknown_link_is_unknown_invite_and_writes_nothing(store: S) {
    let (t, other) = (awaiting(&*store).await, awaiting(&*store).await);
    let theirs = link(&*store, &other.id).await;
    assert_eq!(
        store
            .revoke_invite(&t.id, "0123456789ab", NOW)
            .await
            .unwrap(),
        RegistryOutcome::UnknownInvite
    );
    // Another tenant's link is not this tenant's to end.
    assert_eq!(
        store.revoke_invite(&t.id, &theirs.id(), NOW).await.unwrap(),
        RegistryOutcome::UnknownInvite
    );
    assert_eq!(read_invite(&*store, &theirs.hash).await, theirs);
}

async fn showing_the_token_on_a_tenant_without_tokens_issues_its_only_token(store: S) {
    let t = awaiting(&*store).await;
    let i = link(&*store, &t.id).await;
    let tok = token();
    assert_eq!(
        issue(&*store, &i.hash, &tok, true, NOW + ms(3)).await,
        IssueOutcome::Issued
    );
    assert_eq!(owner(&*store, &tok).await, Some(t.id.clone()));
    assert_eq!(tokens_of(&*store, &t.id).await, vec![tok]);
    assert_eq!(health(&*store, &t.id).await.pending_token, None);
    assert_eq!(
        read_invite(&*store, &i.hash).await.token_shown_at_ms,
        Some(NOW + ms(3))
    );
}

async fn a_second_show_on_a_link_is_already_shown_and_writes_nothing(store: S) {
    let t = awaiting(&*store).await;
    let i = link(&*store, &t.id).await;
    let first = token();
    issue(&*store, &i.hash, &first, true, NOW).await;
    let shown = read_invite(&*store, &i.hash).await;
    let second = token();
    assert_eq!(
        issue(&*store, &i.hash, &second, true, NOW + ms(1)).await,
        IssueOutcome::AlreadyShown
    );
    assert_eq!(owner(&*store, &second).await, None);
    assert_eq!(tokens_of(&*store, &t.id).await, vec![first]);
    assert_eq!(health(&*store, &t.id).await.pending_token, None);
    assert_eq!(read_invite(&*store, &i.hash).await, shown);
}

async fn a_replacement_token_does_not_use_up_the_links_show(store: S) {
    let (t, a) = (tenant(), token());
    store.create_tenant(&t, &a).await.unwrap();
    let i = link(&*store, &t.id).await;
    let b = token();
    assert_eq!(
        issue(&*store, &i.hash, &b, false, NOW).await,
        IssueOutcome::Issued
    );
    assert_eq!(
        read_invite(&*store, &i.hash).await,
        i,
        "the link is unchanged"
    );
    let c = token();
    assert_eq!(
        issue(&*store, &i.hash, &c, true, NOW).await,
        IssueOutcome::Issued
    );
}

async fn a_revoked_expired_or_unknown_link_issues_nothing(store: S) {
    let t = awaiting(&*store).await;
    let (revoked, expiring) = (link(&*store, &t.id).await, link(&*store, &t.id).await);
    store
        .revoke_invite(&t.id, &revoked.id(), NOW)
        .await
        .unwrap();
    let unknown = invite(&t.id, NOW);
    for (hash, now) in [
        (revoked.hash, NOW + ms(1)),
        (expiring.hash, expiring.expires_at_ms),
        (expiring.hash, expiring.expires_at_ms + ms(1)),
        (unknown.hash, NOW),
    ] {
        for reveal in [true, false] {
            let tok = token();
            assert_eq!(
                issue(&*store, &hash, &tok, reveal, now).await,
                IssueOutcome::NoInvite,
                "{now:?} {reveal}"
            );
            assert_eq!(owner(&*store, &tok).await, None);
        }
    }
    assert_eq!(tokens_of(&*store, &t.id).await, vec![]);
    assert_eq!(read_invite(&*store, &expiring.hash).await, expiring);
    assert_eq!(store.invite(&unknown.hash).await.unwrap(), None);
    // Up to its last millisecond the link works.
    let tok = token();
    assert_eq!(
        issue(
            &*store,
            &expiring.hash,
            &tok,
            true,
            expiring.expires_at_ms - MS
        )
        .await,
        IssueOutcome::Issued
    );
}

async fn a_new_token_is_pending_beside_the_old_until_the_ats_calls_with_it(store: S) {
    let (t, a) = (tenant(), token());
    store.create_tenant(&t, &a).await.unwrap();
    let i = link(&*store, &t.id).await;
    let b = token();
    assert_eq!(
        issue(&*store, &i.hash, &b, false, NOW).await,
        IssueOutcome::Issued
    );
    assert_eq!(owner(&*store, &a).await, Some(t.id.clone()));
    assert_eq!(owner(&*store, &b).await, Some(t.id.clone()));
    assert_eq!(health(&*store, &t.id).await.pending_token, Some(b));
    assert_eq!(token_set(&*store, &t.id).await, set([a, b]));
    let account = store.account_by_token(&a).await.unwrap().expect("works");
    assert_eq!(account.health.pending_token, Some(b));
}

async fn a_new_token_replaces_a_pending_one_the_ats_never_called_with(store: S) {
    let (t, a) = (tenant(), token());
    store.create_tenant(&t, &a).await.unwrap();
    let i = link(&*store, &t.id).await;
    let (b, c) = (token(), token());
    for tok in [&b, &c] {
        assert_eq!(
            issue(&*store, &i.hash, tok, false, NOW).await,
            IssueOutcome::Issued
        );
    }
    assert_eq!(owner(&*store, &b).await, None, "B was never used");
    assert_eq!(owner(&*store, &a).await, Some(t.id.clone()));
    assert_eq!(owner(&*store, &c).await, Some(t.id.clone()));
    assert_eq!(health(&*store, &t.id).await.pending_token, Some(c));
    assert_eq!(token_set(&*store, &t.id).await, set([a, c]));
}

async fn completing_a_rotation_leaves_only_the_pending_token(store: S) {
    let (t, a, a2) = (tenant(), token(), token());
    store.create_tenant(&t, &a).await.unwrap();
    store.add_tenant_token(&t.id, &a2).await.unwrap();
    let i = link(&*store, &t.id).await;
    let c = token();
    issue(&*store, &i.hash, &c, false, NOW).await;
    assert!(store.complete_rotation(&t.id, &c).await.unwrap());
    assert_eq!(owner(&*store, &a).await, None);
    assert_eq!(owner(&*store, &a2).await, None);
    assert_eq!(owner(&*store, &c).await, Some(t.id.clone()));
    assert_eq!(tokens_of(&*store, &t.id).await, vec![c]);
    assert_eq!(health(&*store, &t.id).await.pending_token, None);
    // Over once: a second completion finds nothing pending.
    assert!(!store.complete_rotation(&t.id, &c).await.unwrap());
    assert_eq!(tokens_of(&*store, &t.id).await, vec![c]);
}

async fn completing_a_rotation_with_a_token_that_is_not_pending_changes_nothing(store: S) {
    let (t, a) = (tenant(), token());
    store.create_tenant(&t, &a).await.unwrap();
    // Nothing pending at all.
    assert!(!store.complete_rotation(&t.id, &a).await.unwrap());
    let i = link(&*store, &t.id).await;
    let c = token();
    issue(&*store, &i.hash, &c, false, NOW).await;
    // The old token, a stranger's token, and the right token for another tenant.
    let (other, theirs) = (tenant(), token());
    store.create_tenant(&other, &theirs).await.unwrap();
    assert!(!store.complete_rotation(&t.id, &a).await.unwrap());
    assert!(!store.complete_rotation(&t.id, &token()).await.unwrap());
    assert!(!store.complete_rotation(&t.id, &theirs).await.unwrap());
    assert!(!store.complete_rotation(&other.id, &c).await.unwrap());
    assert!(!store.complete_rotation(&tenant().id, &c).await.unwrap());
    assert_eq!(token_set(&*store, &t.id).await, set([a, c]));
    assert_eq!(health(&*store, &t.id).await.pending_token, Some(c));
    assert_eq!(owner(&*store, &a).await, Some(t.id.clone()));
    assert_eq!(owner(&*store, &theirs).await, Some(other.id.clone()));
}

async fn revoking_the_pending_token_ends_the_rotation(store: S) {
    let (t, a) = (tenant(), token());
    store.create_tenant(&t, &a).await.unwrap();
    let i = link(&*store, &t.id).await;
    let c = token();
    issue(&*store, &i.hash, &c, false, NOW).await;
    assert_eq!(
        store.revoke_tenant_token(&t.id, &c).await.unwrap(),
        RegistryOutcome::Done
    );
    assert_eq!(health(&*store, &t.id).await.pending_token, None);
    assert_eq!(owner(&*store, &c).await, None);
    assert_eq!(owner(&*store, &a).await, Some(t.id.clone()));
    assert!(!store.complete_rotation(&t.id, &c).await.unwrap());
    // Revoking another token leaves a pending one pending.
    let d = token();
    issue(&*store, &i.hash, &d, false, NOW).await;
    let a2 = token();
    store.add_tenant_token(&t.id, &a2).await.unwrap();
    store.revoke_tenant_token(&t.id, &a2).await.unwrap();
    assert_eq!(health(&*store, &t.id).await.pending_token, Some(d));
}

async fn issuing_to_a_tenant_holding_the_maximum_of_tokens_is_too_many(store: S) {
    let t = tenant();
    store.create_tenant(&t, &token()).await.unwrap();
    for _ in 1..MAX_TENANT_TOKENS {
        store.add_tenant_token(&t.id, &token()).await.unwrap();
    }
    let before = tokens_of(&*store, &t.id).await;
    let i = link(&*store, &t.id).await;
    for reveal in [false, true] {
        let tok = token();
        assert_eq!(
            issue(&*store, &i.hash, &tok, reveal, NOW).await,
            IssueOutcome::TooManyTokens
        );
        assert_eq!(owner(&*store, &tok).await, None);
    }
    assert_eq!(tokens_of(&*store, &t.id).await, before);
    assert_eq!(
        read_invite(&*store, &i.hash).await,
        i,
        "the show is not used up"
    );
    assert_eq!(health(&*store, &t.id).await.pending_token, None);
}

async fn a_pending_token_does_not_count_against_the_maximum_it_replaces(store: S) {
    let t = tenant();
    store.create_tenant(&t, &token()).await.unwrap();
    for _ in 2..MAX_TENANT_TOKENS {
        store.add_tenant_token(&t.id, &token()).await.unwrap();
    }
    let i = link(&*store, &t.id).await;
    // MAX - 1 tokens and a pending one: a new issue replaces the pending one.
    for _ in 0..2 {
        let tok = token();
        assert_eq!(
            issue(&*store, &i.hash, &tok, false, NOW).await,
            IssueOutcome::Issued
        );
        assert_eq!(health(&*store, &t.id).await.pending_token, Some(tok));
        assert_eq!(
            store.tenant_tokens(&t.id).await.unwrap().len(),
            MAX_TENANT_TOKENS
        );
    }
}

async fn concurrent_shows_on_one_link_issue_exactly_one_token(store: S) {
    let t = awaiting(&*store).await;
    let i = link(&*store, &t.id).await;
    let tokens: Vec<TokenHash> = (0..RACERS).map(|_| token()).collect();
    let results = race(|n| {
        let (store, hash, tok) = (store.clone(), i.hash, tokens[n]);
        async move { (tok, store.issue_connect_token(&hash, &tok, true, NOW).await) }
    })
    .await;
    let mut issued = Vec::new();
    for (tok, r) in &results {
        match r {
            Ok(IssueOutcome::Issued) => issued.push(*tok),
            Ok(IssueOutcome::AlreadyShown) | Err(StoreError::Unavailable(_)) => {
                assert_eq!(owner(&*store, tok).await, None);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(issued.len(), 1, "{results:?}");
    assert_eq!(tokens_of(&*store, &t.id).await, issued);
    assert_eq!(owner(&*store, &issued[0]).await, Some(t.id.clone()));
    assert_eq!(health(&*store, &t.id).await.pending_token, None);
}

async fn an_ats_call_is_recorded_then_again_only_once_stale(store: S) {
    let (t, tok) = (tenant(), token());
    store.create_tenant(&t, &tok).await.unwrap();
    assert_eq!(health(&*store, &t.id).await.last_call, None);
    let first = call(NOW);
    assert!(store.record_ats_call(&t.id, &first, NOW).await.unwrap());
    assert_eq!(health(&*store, &t.id).await.last_call, Some(first.clone()));
    // Recorded at NOW: a call that counts NOW, or earlier, as fresh writes nothing.
    for stale_before in [NOW - ms(1), NOW] {
        let warm = AtsCall {
            at_ms: NOW + ms(2),
            route: "/assessment.start".into(),
        };
        assert!(
            !store
                .record_ats_call(&t.id, &warm, stale_before)
                .await
                .unwrap()
        );
        assert_eq!(health(&*store, &t.id).await.last_call, Some(first.clone()));
    }
    let later = call(NOW + ms(10));
    assert!(
        store
            .record_ats_call(&t.id, &later, NOW + ms(1))
            .await
            .unwrap()
    );
    assert_eq!(health(&*store, &t.id).await.last_call, Some(later.clone()));
    let account = store.account_by_token(&tok).await.unwrap().expect("works");
    assert_eq!(account.health.last_call, Some(later));
    assert!(
        !store
            .record_ats_call(&tenant().id, &call(NOW), NOW)
            .await
            .unwrap()
    );
    assert_eq!(store.tenant(&tenant().id).await.unwrap(), None);
}

async fn concurrent_ats_calls_record_once(store: S) {
    let t = tenant();
    store.create_tenant(&t, &token()).await.unwrap();
    store.record_ats_call(&t.id, &call(NOW), NOW).await.unwrap();
    let stale_before = NOW + ms(1);
    let results = race(|n| {
        let (store, id) = (store.clone(), t.id.clone());
        async move {
            let c = call(NOW + ms(10 + n as u64));
            (
                c.clone(),
                store.record_ats_call(&id, &c, stale_before).await,
            )
        }
    })
    .await;
    let written: Vec<&AtsCall> = results
        .iter()
        .filter(|(_, r)| matches!(r, Ok(true)))
        .map(|(c, _)| c)
        .collect();
    assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
    assert_eq!(written.len(), 1, "{results:?}");
    assert_eq!(
        health(&*store, &t.id).await.last_call.as_ref(),
        Some(written[0])
    );
}

async fn a_changed_delivery_outcome_is_recorded_at_once_and_the_same_only_once_stale(store: S) {
    let t = tenant();
    store.create_tenant(&t, &token()).await.unwrap();
    let refused = report(NOW, DeliveryHealth::Refused);
    assert!(store.record_delivery(&t.id, &refused, NOW).await.unwrap());
    assert_eq!(
        health(&*store, &t.id).await.last_delivery,
        Some(refused.clone())
    );
    // The same outcome, while the recorded one is fresh: nothing written.
    let again = report(NOW + ms(5), DeliveryHealth::Refused);
    assert!(!store.record_delivery(&t.id, &again, NOW).await.unwrap());
    assert_eq!(
        health(&*store, &t.id).await.last_delivery,
        Some(refused.clone())
    );
    // Another outcome is written at once, however fresh the recorded one.
    let delivered = report(NOW + ms(6), DeliveryHealth::Delivered);
    assert!(
        store
            .record_delivery(&t.id, &delivered, Timestamp::EPOCH)
            .await
            .unwrap()
    );
    assert_eq!(
        health(&*store, &t.id).await.last_delivery,
        Some(delivered.clone())
    );
    // The same outcome once the recorded one is stale.
    let later = report(NOW + ms(20), DeliveryHealth::Delivered);
    assert!(
        store
            .record_delivery(&t.id, &later, NOW + ms(7))
            .await
            .unwrap()
    );
    assert_eq!(health(&*store, &t.id).await.last_delivery, Some(later));
    let dead = report(NOW + ms(30), DeliveryHealth::Dead);
    assert!(store.record_delivery(&t.id, &dead, NOW).await.unwrap());
    assert_eq!(health(&*store, &t.id).await.last_delivery, Some(dead));
    assert!(
        !store
            .record_delivery(&tenant().id, &report(NOW, DeliveryHealth::Dead), NOW)
            .await
            .unwrap()
    );
}

async fn a_key_check_is_read_back_with_the_account(store: S) {
    let (t, tok) = (tenant(), token());
    store.create_tenant(&t, &tok).await.unwrap();
    assert_eq!(health(&*store, &t.id).await.key, None);
    for (label, scopes_verified) in [("Hub key …1234", true), ("Other …abcd", false)] {
        let check = KeyCheck {
            at_ms: NOW,
            label: label.into(),
            scopes_verified,
        };
        assert!(store.record_key_check(&t.id, &check).await.unwrap());
        assert_eq!(health(&*store, &t.id).await.key, Some(check.clone()));
        let account = store.account_by_token(&tok).await.unwrap().expect("works");
        assert_eq!(account.health.key, Some(check));
    }
    let ghost = KeyCheck {
        at_ms: NOW,
        label: "x".into(),
        scopes_verified: true,
    };
    assert!(!store.record_key_check(&tenant().id, &ghost).await.unwrap());
}

async fn a_tenant_s_health_survives_operator_updates_and_is_listed(store: S) {
    let t = tenant();
    store.create_tenant(&t, &token()).await.unwrap();
    let i = link(&*store, &t.id).await;
    let pending = token();
    issue(&*store, &i.hash, &pending, false, NOW).await;
    let want = TenantHealth {
        last_call: Some(call(NOW + ms(1))),
        key: Some(KeyCheck {
            at_ms: NOW + ms(2),
            label: "Hub key …1234".into(),
            scopes_verified: false,
        }),
        last_delivery: Some(report(NOW + ms(3), DeliveryHealth::Refused)),
        pending_token: Some(pending),
    };
    assert!(
        store
            .record_ats_call(&t.id, want.last_call.as_ref().unwrap(), NOW)
            .await
            .unwrap()
    );
    assert!(
        store
            .record_key_check(&t.id, want.key.as_ref().unwrap())
            .await
            .unwrap()
    );
    assert!(
        store
            .record_delivery(&t.id, want.last_delivery.as_ref().unwrap(), NOW)
            .await
            .unwrap()
    );
    store
        .update_tenant(&t.id, &|x| x.name = "Renamed".into())
        .await
        .unwrap()
        .expect("tenant exists");
    store
        .update_tenant(&t.id, &|x| x.disabled = true)
        .await
        .unwrap();
    store
        .update_tenant(&t.id, &|x| x.disabled = false)
        .await
        .unwrap();
    assert_eq!(health(&*store, &t.id).await, want);
    assert_eq!(listed_health(&*store, &t.id).await, want);
    assert_eq!(store.tenant(&t.id).await.unwrap().unwrap().name, "Renamed");
    // A tenant nobody recorded anything of is listed with empty health.
    let quiet = awaiting(&*store).await;
    assert_eq!(
        listed_health(&*store, &quiet.id).await,
        TenantHealth::default()
    );
}

async fn failures_are_counted_per_key_from_zero(store: S) {
    let (a, b) = (unique("ip:1.2.3.4:w1"), unique("code:w1"));
    let expires = now_s() + 3_600;
    assert_eq!(store.failures(&a).await.unwrap(), 0);
    assert_eq!(store.add_failure(&a, expires).await.unwrap(), 1);
    assert_eq!(store.add_failure(&a, expires).await.unwrap(), 2);
    assert_eq!(store.failures(&a).await.unwrap(), 2);
    assert_eq!(store.failures(&b).await.unwrap(), 0);
    assert_eq!(store.add_failure(&b, expires).await.unwrap(), 1);
    assert_eq!(store.add_failure(&a, expires).await.unwrap(), 3);
    assert_eq!(
        (
            store.failures(&a).await.unwrap(),
            store.failures(&b).await.unwrap()
        ),
        (3, 1)
    );
}

async fn concurrent_failures_are_all_counted(store: S) {
    let key = unique("ip:w2");
    let expires = now_s() + 3_600;
    let results = race(|_| {
        let (store, key) = (store.clone(), key.clone());
        async move { store.add_failure(&key, expires).await.unwrap() }
    })
    .await;
    let mut counts = results.clone();
    counts.sort();
    assert_eq!(counts, (1..=RACERS as u32).collect::<Vec<_>>());
    assert_eq!(store.failures(&key).await.unwrap(), RACERS as u32);
}

async fn a_tenant_created_awaiting_has_no_token_until_its_link_issues_one(store: S) {
    let t = awaiting(&*store).await;
    assert_eq!(store.tenant(&t.id).await.unwrap(), Some(t.clone()));
    assert_eq!(store.tenant_tokens(&t.id).await.unwrap(), vec![]);
    let listed = store.list_tenants().await.unwrap();
    let entry = listed.iter().find(|e| e.tenant.id == t.id).expect("listed");
    assert_eq!((&entry.tenant, entry.tokens.len()), (&t, 0));
    assert_eq!(entry.health, TenantHealth::default());
    assert_eq!(owner(&*store, &token()).await, None);
    let i = link(&*store, &t.id).await;
    let first = token();
    assert_eq!(
        issue(&*store, &i.hash, &first, false, NOW).await,
        IssueOutcome::Issued
    );
    assert_eq!(tokens_of(&*store, &t.id).await, vec![first]);
    assert_eq!(owner(&*store, &first).await, Some(t.id.clone()));
    assert_eq!(health(&*store, &t.id).await.pending_token, None);
}

async fn an_awaiting_tenant_is_created_once(store: S) {
    let (t, tok) = (tenant(), token());
    store.create_tenant(&t, &tok).await.unwrap();
    let again = Tenant {
        name: "Impostor".into(),
        ..t.clone()
    };
    assert_eq!(
        store.create_tenant_awaiting(&again).await.unwrap(),
        RegistryOutcome::AlreadyExists
    );
    assert_eq!(store.tenant(&t.id).await.unwrap(), Some(t.clone()));
    assert_eq!(tokens_of(&*store, &t.id).await, vec![tok]);
    let waiting = awaiting(&*store).await;
    assert_eq!(
        store.create_tenant_awaiting(&waiting).await.unwrap(),
        RegistryOutcome::AlreadyExists
    );
    assert_eq!(
        store.create_tenant(&waiting, &token()).await.unwrap(),
        RegistryOutcome::AlreadyExists
    );
    assert_eq!(store.tenant_tokens(&waiting.id).await.unwrap(), vec![]);
}
