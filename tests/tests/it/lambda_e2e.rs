//! End to end: the five compiled Lambda binaries (four HTTP, one scheduled) under the Runtime API emulator, behind an HTTP
//! API gateway, on DynamoDB and Secrets Manager served by moto, with a fake Ashby and fake
//! vendors on loopback that check signatures and Ashby's schemas.

use std::time::Duration;

use hub_tests::fakes::AshbyMode;
use serde_json::json;

use crate::helpers::{
    CANDIDATE_EMAIL, CANDIDATE_FIRST, CANDIDATE_LAST, Fixture, Host, VENDOR_SECRET,
};
use crate::scenarios as sc;

#[tokio::test]
async fn lambda_list_and_auth() {
    let f = Fixture::lambda(1).await;
    sc::list_shows_the_enabled_packages(&f).await;
    sc::a_missing_or_unknown_token_gets_401_and_nothing_else(&f).await;
    sc::the_token_works_as_basic_password_or_bearer(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn lambda_full_lifecycle_reaches_ashby_and_logs_no_pii_or_secrets() {
    let f = Fixture::lambda(1).await;
    sc::a_full_lifecycle_reaches_ashby_exactly_as_specified(&f).await;
    sc::cancel_stops_the_check_once_and_only_for_its_tenant(&f).await;
    // A queued order is read back from the table (with the candidate's data) by the scheduled
    // run: at trace level the AWS SDK would log that response body.
    sc::a_vendor_outage_queues_the_order_and_places_it_once_on_recovery(&f).await;
    let logs = f.logs();
    assert!(
        logs.len() > 10,
        "functions log at trace level: {} lines",
        logs.len()
    );
    for secret in [
        CANDIDATE_EMAIL,
        CANDIDATE_FIRST,
        CANDIDATE_LAST,
        f.token.as_str(),
        "globex-ashby-key",
        VENDOR_SECRET.trim_start_matches("whsec_"),
    ] {
        let leaks: Vec<_> = logs.iter().filter(|l| l.contains(secret)).collect();
        assert!(leaks.is_empty(), "{secret:?} leaked into logs: {leaks:#?}");
    }
    f.stop().await;
}

#[tokio::test]
async fn lambda_repeated_and_concurrent_starts_place_one_order() {
    let f = Fixture::lambda(3).await;
    sc::concurrent_identical_starts_place_exactly_one_order(&f, 12).await;
    sc::a_repeated_start_returns_the_same_assessment_and_orders_nothing_new(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn lambda_bad_input_gets_clear_4xx() {
    let f = Fixture::lambda(1).await;
    sc::a_malformed_start_is_a_400_naming_the_field_and_orders_nothing(&f).await;
    sc::an_unknown_or_disabled_assessment_type_is_a_422_for_the_recruiter(&f).await;
    sc::a_start_the_recruiter_can_fix_is_a_422_saying_what_to_do(&f).await;
    sc::a_start_with_an_application_status_ashby_may_add_later_is_ordered(&f).await;
    sc::an_oversized_body_is_a_413(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn lambda_vendor_rejection_and_outage_with_the_scheduled_retry() {
    let f = Fixture::lambda(1).await;
    sc::a_vendor_rejection_reaches_the_recruiter_verbatim(&f).await;
    sc::a_vendor_outage_queues_the_order_and_places_it_once_on_recovery(&f).await;
    sc::a_queued_order_the_vendor_refuses_is_reported_to_ashby(&f).await;
    sc::a_cancel_during_a_vendor_outage_reaches_the_vendor_later(&f).await;
    sc::a_queued_order_cancelled_before_its_retry_is_never_placed(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn lambda_callbacks_verified_and_an_ashby_outage_loses_nothing() {
    let f = Fixture::lambda(1).await;
    sc::callbacks_are_verified_validated_and_scoped_to_their_vendor(&f).await;
    sc::an_ashby_outage_loses_and_doubles_nothing(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn lambda_concurrent_callbacks_and_a_cancel_racing_a_completion() {
    let f = Fixture::lambda(1).await;
    sc::twenty_identical_concurrent_callbacks_make_one_update(&f).await;
    sc::a_cancel_racing_a_completion_ends_consistently(&f).await;
    sc::a_refused_ashby_key_parks_deliveries_until_they_are_redelivered(&f).await;
    f.stop().await;
}

/// The callback function is killed while it waits on Ashby, after its write: the scheduled run
/// delivers the update once the lease of the dead process expires.
#[tokio::test]
async fn a_function_killed_between_its_write_and_the_ashby_call_loses_nothing() {
    let mut f = Fixture::lambda(1).await;
    let id = f.start_ok().await;
    f.ashby.set_mode(AshbyMode::Hang(Duration::from_secs(30)));
    let url = f.callback_url("acme");
    let body = json!({"assessment_id": id, "status": "completed", "report_url": "https://v.example/r/k",
                      "result": {"type": "numeric_score", "value": 5, "label": "Score"}});
    let vendor = f.vendor.clone();
    let pending = tokio::spawn(async move { vendor.callback(&url, "wh-kill", &body).await });
    // Wait until the function is inside the Ashby call (the fake has received the update).
    crate::helpers::eventually(
        "the update to reach Ashby's socket",
        Duration::from_secs(10),
        || (!f.ashby.received().is_empty()).then_some(()),
    )
    .await;
    if let Host::Lambda(h) = &mut f.host {
        h.kill("result-callback").await;
    }
    // The killed invocation never answers; the vendor would see a timeout and retry.
    pending.abort();
    assert!(f.ashby.accepted_for(&id).is_empty());
    f.ashby.set_mode(AshbyMode::Accept);
    f.tick_until("the scheduled run to deliver the orphaned update", || {
        !f.ashby.accepted_for(&id).is_empty()
    })
    .await;
    f.tick().await;
    assert_eq!(f.ashby.accepted_for(&id).len(), 1);
    f.stop().await;
}

/// The operator's view: Ashby refuses the key, the update is parked; `hubctl deliveries list
/// --stuck` shows it, `hubctl assessment show` tells the story without candidate data (unless
/// asked), and `hubctl deliveries redeliver` gets it delivered once the key works again.
#[tokio::test]
async fn an_operator_finds_and_redelivers_a_parked_update_with_hubctl() {
    let f = Fixture::lambda(1).await;
    let id = f.start_ok().await;
    f.ashby.set_mode(AshbyMode::Unauthorized);
    let (s, _) = f
        .vendor
        .callback(
            &f.callback_url("acme"),
            "wh-op",
            &json!({"assessment_id": id, "status": "in_progress", "status_label": "Awaiting consent"}),
        )
        .await;
    assert_eq!(s, 200);

    let (code, out, err) = f.hubctl(&["deliveries", "list", "--stuck", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let stuck = listed["stuck"].as_array().unwrap();
    assert_eq!(stuck.len(), 1, "{listed:#}");
    assert_eq!(stuck[0]["assessment_id"], id.as_str());
    assert_eq!(stuck[0]["state"], "parked");
    assert!(stuck[0]["reason"].as_str().unwrap().contains("401"));

    let (code, out, err) = f.hubctl(&["assessment", "show", &id]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Awaiting consent") && out.contains("parked"),
        "{out}"
    );
    assert!(
        out.contains("vendor_order") && out.contains("delivered"),
        "{out}"
    );
    assert!(
        !out.contains(CANDIDATE_EMAIL) && !out.contains(CANDIDATE_LAST),
        "{out}"
    );
    let (_, revealed, _) = f.hubctl(&["assessment", "show", &id, "--reveal-pii"]).await;
    assert!(revealed.contains(CANDIDATE_EMAIL), "{revealed}");

    f.ashby.set_mode(AshbyMode::Accept);
    let (code, out, err) = f
        .hubctl(&["deliveries", "redeliver", "--assessment", &id])
        .await;
    assert_eq!(code, 0, "{out}{err}");
    f.tick_until("the redelivered update to arrive", || {
        !f.ashby.accepted_for(&id).is_empty()
    })
    .await;
    let (code, out, _) = f.hubctl(&["deliveries", "list", "--stuck", "--json"]).await;
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["stuck"],
        json!([])
    );
    let (code, _, err) = f
        .hubctl(&["deliveries", "redeliver", "--assessment", &id])
        .await;
    assert_eq!(code, 1, "nothing left to redeliver: {err}");
    f.stop().await;
}

/// DynamoDB throttling or failing mid-request: the caller gets a 503 with a JSON error that says
/// nothing of the internals, nothing half-written survives (no order without its record, no
/// acknowledged callback without its update queued), and the retry after recovery works once.
#[tokio::test]
async fn dynamodb_failures_mid_request_are_a_clean_503_and_leave_nothing_half_written() {
    use hub_tests::aws_proxy::{AwsProxy, Fault};
    let proxy = AwsProxy::start(&hub_tests::aws::endpoint()).await;
    let f = Fixture::lambda_with(1, |_| {
        vec![("AWS_ENDPOINT_URL".to_owned(), proxy.url().to_owned())]
    })
    .await;
    let writes = [
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:TransactWriteItems",
    ];

    // A start whose write is throttled: 503, and the vendor never hears of it.
    proxy.set_fault(&writes, Fault::Throttle);
    let body = f.start_body(&f.type_id, &crate::helpers::fresh_app());
    let (s, b) = f.call("/assessment.start", &f.token, &body).await;
    assert_eq!(s, 503, "{b}");
    assert_eq!(b["errorInfo"]["code"], "storage_unavailable");
    assert!(!b.to_string().contains("Throughput"), "no internals: {b}");
    assert!(f.vendor.received().is_empty(), "no order without a record");
    proxy.clear_fault();
    let (s, b) = f.call("/assessment.start", &f.token, &body).await;
    assert_eq!(s, 200, "{b}");
    let id = b["results"]["assessment_id"].as_str().unwrap().to_owned();
    assert_eq!(f.orders_for(&id).len(), 1);

    // A callback whose write fails: 503, so the vendor retries; nothing reached Ashby.
    proxy.set_fault(&writes, Fault::ServerError);
    let cb = f.callback_url("acme");
    let news = json!({"assessment_id": id, "status": "completed", "report_url": "https://v.example/r/d",
                      "result": {"type": "numeric_score", "value": 9, "label": "Score"}});
    let (s, b) = f.vendor.callback(&cb, "wh-ddb", &news).await;
    assert_eq!(s, 503, "{b}");
    assert_eq!(b["errorInfo"]["code"], "storage_unavailable");
    assert!(f.ashby.received().is_empty());
    // Reads failing too: list is a 503 as well, never a 500.
    proxy.set_fault(&["dynamodb:GetItem"], Fault::ServerError);
    let (s, b) = f.call("/assessment.list", &f.token, &json!({})).await;
    assert_eq!(s, 503, "{b}");

    proxy.clear_fault();
    let (s, b) = f.vendor.callback(&cb, "wh-ddb", &news).await;
    assert_eq!(s, 200, "{b}");
    f.ashby.wait_for(&id, 1, Duration::from_secs(10)).await;
    let (s, _) = f.vendor.callback(&cb, "wh-ddb", &news).await;
    assert_eq!(s, 200);
    f.tick().await;
    assert_eq!(f.ashby.accepted_for(&id).len(), 1, "exactly once");
    f.stop().await;
}

/// A tenant's Ashby API key is only ever used at its current version: a function reads it with
/// one GetSecretValue (AWSCURRENT). A vendor's signing secret is read at both versions only
/// where callbacks are verified (the previous one still verifies during a rotation); signing an
/// order needs the current one alone.
#[tokio::test]
async fn the_ashby_key_is_read_with_one_call_and_a_signing_secret_with_two_only_to_verify() {
    use hub_tests::aws_proxy::AwsProxy;
    let proxy = AwsProxy::start(&hub_tests::aws::endpoint()).await;
    let f = Fixture::lambda_with(1, |_| {
        vec![("AWS_ENDPOINT_URL".to_owned(), proxy.url().to_owned())]
    })
    .await;
    let id = f.start_ok().await;
    let (s, b) = f
        .vendor
        .callback(
            &f.callback_url("acme"),
            "wh-reads",
            &json!({"assessment_id": id, "status": "in_progress"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    f.ashby.wait_for(&id, 1, Duration::from_secs(10)).await;
    let reads = |secret: &str| -> Vec<String> {
        proxy
            .calls()
            .into_iter()
            .filter(|c| c.operation == "secretsmanager:GetSecretValue")
            .filter(|c| c.secret_id().is_some_and(|n| n.ends_with(secret)))
            .map(|c| c.body["VersionStage"].as_str().unwrap_or("-").to_owned())
            .collect()
    };
    assert_eq!(reads("tenants/globex/ashby-api-key"), ["AWSCURRENT"]);
    let mut signing = reads("vendors/acme/signing-secret");
    signing.sort();
    assert_eq!(
        signing,
        ["AWSCURRENT", "AWSCURRENT", "AWSPREVIOUS"],
        "start-assessment signs with the current secret; result-callback verifies with both"
    );
    f.stop().await;
}

/// DynamoDB or Secrets Manager not answering at all (a stuck connection): the SDK gives each
/// attempt up after HUB_AWS_ATTEMPT_TIMEOUT_MS and retries, so the caller gets a clean 503 in
/// seconds instead of waiting out the function's timeout; nothing half-written survives, and the
/// retry after recovery works once.
#[tokio::test]
async fn a_hung_aws_call_is_a_prompt_503_and_leaves_nothing_half_written() {
    use hub_tests::aws_proxy::{AwsProxy, Fault};
    let proxy = AwsProxy::start(&hub_tests::aws::endpoint()).await;
    let f = Fixture::lambda_with(1, |_| {
        vec![
            ("AWS_ENDPOINT_URL".to_owned(), proxy.url().to_owned()),
            ("HUB_AWS_ATTEMPT_TIMEOUT_MS".to_owned(), "1000".to_owned()),
        ]
    })
    .await;
    // Three attempts of 1 s and the SDK's backoffs (at most 3 s) are 6 s; the rest is margin for
    // a loaded machine. Without the attempt timeout the call waits until the test gives up.
    async fn within<T>(what: &str, call: impl std::future::Future<Output = T>) -> T {
        let started = std::time::Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(25), call)
            .await
            .unwrap_or_else(|_| panic!("{what}: no answer within 25 s"));
        let took = started.elapsed();
        assert!(took < Duration::from_secs(20), "{what} took {took:?}");
        answer
    }

    // A start whose write hangs: 503, and neither an order nor an assessment was made.
    proxy.set_fault(&["dynamodb:TransactWriteItems"], Fault::Hang);
    let body = f.start_body(&f.type_id, &crate::helpers::fresh_app());
    let (s, b) = within("start", f.call("/assessment.start", &f.token, &body)).await;
    assert_eq!(s, 503, "{b}");
    assert_eq!(b["errorInfo"]["code"], "storage_unavailable");
    assert!(!b.to_string().contains("timed out"), "no internals: {b}");
    assert!(f.vendor.received().is_empty(), "no order without a record");
    let hung = proxy
        .operations()
        .iter()
        .filter(|o| *o == "dynamodb:TransactWriteItems")
        .count();
    assert!(
        hung >= 2,
        "the SDK retried the timed-out attempt ({hung} attempts)"
    );
    proxy.clear_fault();
    let (s, b) = f.call("/assessment.start", &f.token, &body).await;
    assert_eq!(s, 200, "{b}");
    // A fresh start, not one resumed from a half-written record: started, with one order.
    assert_eq!(
        b["results"]["update_request"]["assessment_status"]["value"], "Started",
        "{b}"
    );
    let id = b["results"]["assessment_id"].as_str().unwrap().to_owned();
    assert_eq!(f.orders_for(&id).len(), 1);
    assert_eq!(f.vendor.received().len(), 1);

    // A callback whose signing secret cannot be read: 503, so the vendor retries; Ashby heard
    // nothing. (The callback function has read no secret yet: nothing is cached.)
    proxy.set_fault(&["secretsmanager:GetSecretValue"], Fault::Hang);
    let cb = f.callback_url("acme");
    let news = json!({"assessment_id": id, "status": "in_progress", "status_label": "Checking"});
    let (s, b) = within("callback", f.vendor.callback(&cb, "wh-hang", &news)).await;
    assert_eq!(s, 503, "{b}");
    assert_eq!(b["errorInfo"]["code"], "secrets_unavailable");
    assert!(f.ashby.received().is_empty());
    proxy.clear_fault();
    let (s, b) = f.vendor.callback(&cb, "wh-hang", &news).await;
    assert_eq!(s, 200, "{b}");
    f.ashby.wait_for(&id, 1, Duration::from_secs(10)).await;
    f.tick().await;
    assert_eq!(f.ashby.accepted_for(&id).len(), 1, "exactly once");
    f.stop().await;
}
