//! Greenhouse as the ATS (`../shared/greenhouse/CONTRACT.md`), on the local hub and on the
//! compiled Lambda functions: every body the hub answers on a Greenhouse route is checked against
//! `schemas.json`, and the fake Greenhouse checks each `PATCH` it receives (partner key, no body).

use std::time::Duration;

use hub::domain::AssessmentId;
use hub_local::greenhouse_schemas::{
    LIST_TESTS_RESPONSE, RESPONSE_ERROR_REQUEST, SEND_TEST_REQUEST, SEND_TEST_RESPONSE,
    TEST_STATUS_RESPONSE,
};
use hub_tests::fakes::VendorMode;
use serde_json::{Value, json};

use crate::helpers::{CANDIDATE_EMAIL, CANDIDATE_FIRST, CANDIDATE_LAST, Fixture, Host};

const WAIT: Duration = Duration::from_secs(10);

/// `send_test` for a new test of the fake Greenhouse; its `url` and the answer's id.
async fn send_test(f: &Fixture) -> (String, String) {
    let url = f.greenhouse.test_url();
    let id = send_test_at(f, &url).await;
    (url, id)
}

async fn send_test_at(f: &Fixture, url: &str) -> String {
    let body = f.send_test_body(&f.type_id, url);
    f.assert_gh_valid(SEND_TEST_REQUEST, &body);
    let (s, b) = f.call("/greenhouse/send_test", &f.gh_key, &body).await;
    assert_eq!(s, 200, "{b}");
    f.assert_gh_valid(SEND_TEST_RESPONSE, &b);
    b["partner_interview_id"].as_str().unwrap().to_owned()
}

async fn test_status(f: &Fixture, id: &str) -> Value {
    let (s, b) = f
        .gh_get(
            &format!("/greenhouse/test_status?partner_interview_id={id}"),
            &f.gh_key,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    f.assert_gh_valid(TEST_STATUS_RESPONSE, &b);
    b
}

async fn wait_for_patches(f: &Fixture, url: &str, accepted: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while f
        .greenhouse
        .patches_for(url)
        .iter()
        .filter(|p| p.accepted)
        .count()
        < accepted
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {accepted} accepted PATCHes of {url}: {:#?}",
            f.greenhouse.received()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const COMPLETED_LABEL: &str = "Clear";
const REPORT: &str = "https://vendor.example/reports/gh-1";

fn completed(id: &str) -> Value {
    json!({
        "assessment_id": id, "status": "completed", "status_label": COMPLETED_LABEL,
        "result": {"type": "numeric_score", "value": 87, "label": "Score"},
        "report_url": REPORT,
        "metadata": [
            {"identifier": "duration", "label": "Time taken", "type": "numeric_duration_minutes", "value": 74},
            {"identifier": "passed", "label": "Passed", "type": "boolean_success", "value": true}
        ]
    })
}

/// list → send_test → in_progress → completed → one PATCH → test_status complete.
pub async fn a_greenhouse_test_runs_from_list_to_complete_with_one_patch(f: &Fixture) {
    let (s, list) = f.gh_get("/greenhouse/list_tests", &f.gh_key).await;
    assert_eq!(s, 200, "{list}");
    f.assert_gh_valid(LIST_TESTS_RESPONSE, &list);
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["partner_test_id"] == f.type_id.as_str())
        .unwrap_or_else(|| panic!("the package is listed by its stable id: {list}"));
    assert_eq!(entry["partner_test_name"], "Criminal record check");
    assert!(
        !list.to_string().contains(&f.disabled_type_id),
        "only enabled packages: {list}"
    );
    // A package that needs the recruiter's options cannot be sent from Greenhouse, which cannot
    // ask for them: not listed, and a send_test of it is refused with nothing ordered.
    assert!(
        !list.to_string().contains(&f.panel_type_id),
        "no package with a required option: {list}"
    );
    let before = f.vendor.received().len();
    let body = f.send_test_body(&f.panel_type_id, &f.greenhouse.test_url());
    let (s, b) = f.call("/greenhouse/send_test", &f.gh_key, &body).await;
    assert_eq!(s, 422, "{b}");
    assert!(b["message"].as_str().unwrap().contains("options"), "{b}");
    assert_eq!(f.vendor.received().len(), before, "nothing ordered");

    let (url, id) = send_test(f).await;
    let orders = f.orders_for(&id);
    assert_eq!(orders.len(), 1, "{orders:#?}");
    let b = &orders[0].body;
    assert!(orders[0].signature_ok && orders[0].accepted);
    assert_eq!(b["ats"], "greenhouse");
    assert_eq!(b["job"], Value::Null);
    assert_eq!(b["application_id"], "26234709");
    assert_eq!(b["candidate"]["email"], CANDIDATE_EMAIL);
    assert_eq!(b["package_id"], "criminal-basic");
    assert_eq!(test_status(f, &id).await["partner_status"], "Started");

    let cb = f.callback_url("acme");
    let (s, body) = f
        .vendor
        .callback(
            &cb,
            &format!("gh-{id}-1"),
            &json!({"assessment_id": id, "status": "in_progress", "status_label": "Awaiting candidate consent"}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let st = test_status(f, &id).await;
    assert_eq!(st["partner_status"], "Awaiting candidate consent");
    assert!(st.get("partner_profile_url").is_none(), "{st}");
    f.tick().await;
    assert!(
        f.greenhouse.patches_for(&url).is_empty(),
        "no PATCH for progress: Greenhouse shows none"
    );

    let (s, body) = f
        .vendor
        .callback(&cb, &format!("gh-{id}-2"), &completed(&id))
        .await;
    assert_eq!(s, 200, "{body}");
    wait_for_patches(f, &url, 1).await;
    let st = test_status(f, &id).await;
    assert_eq!(st["partner_status"], "complete", "{st}");
    assert_eq!(st["partner_profile_url"], REPORT);
    assert_eq!(st["partner_score"], 87.0);
    assert_eq!(st["metadata"]["Time taken"], 74);
    assert_eq!(st["metadata"]["Passed"], true);
    assert_eq!(st["metadata"]["Status"], COMPLETED_LABEL);

    // The same completion again, and later runs of the schedule: still one PATCH.
    let (s, _) = f
        .vendor
        .callback(&cb, &format!("gh-{id}-2"), &completed(&id))
        .await;
    assert_eq!(s, 200);
    for _ in 0..3 {
        f.tick().await;
    }
    let patches = f.greenhouse.patches_for(&url);
    assert_eq!(patches.len(), 1, "{patches:#?}");
    assert!(patches[0].violations.is_empty(), "{patches:#?}");
    assert_eq!(patches[0].body_len, 0);
    assert!(
        f.ashby
            .received()
            .iter()
            .chain(f.other_ashby.received().iter())
            .all(|u| u.body["assessment_id"] != id.as_str()),
        "a Greenhouse test never reaches an Ashby"
    );
}

pub async fn a_repeated_send_test_returns_the_same_id_and_orders_nothing_new(f: &Fixture) {
    let (url, id) = send_test(f).await;
    for _ in 0..2 {
        assert_eq!(send_test_at(f, &url).await, id);
    }
    assert_eq!(f.orders_for(&id).len(), 1);
    // Even once it ended: the url names this one test forever.
    let cb = f.callback_url("acme");
    let (s, _) = f
        .vendor
        .callback(&cb, &format!("gh-{id}-c"), &completed(&id))
        .await;
    assert_eq!(s, 200);
    assert_eq!(send_test_at(f, &url).await, id);
    assert_eq!(f.orders_for(&id).len(), 1);
}

pub async fn concurrent_send_tests_of_one_url_place_one_order(f: &Fixture, n: usize) {
    let url = f.greenhouse.test_url();
    let ids = futures::future::join_all((0..n).map(|_| send_test_at(f, &url))).await;
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    assert_eq!(
        f.orders_for(&ids[0]).iter().filter(|o| o.accepted).count(),
        1
    );
}

pub async fn a_vendor_down_at_send_time_gets_the_order_later_and_greenhouse_its_patch(f: &Fixture) {
    f.vendor.set_mode(VendorMode::ServerError);
    let (url, id) = send_test(f).await;
    assert!(
        test_status(f, &id).await["partner_status"]
            .as_str()
            .unwrap()
            .starts_with("Queued"),
    );
    f.vendor.set_mode(VendorMode::Accept);
    f.tick_until("the queued order to be placed", || {
        f.orders_for(&id).iter().any(|o| o.accepted)
    })
    .await;
    assert_eq!(test_status(f, &id).await["partner_status"], "Started");
    let (s, _) = f
        .vendor
        .callback(
            &f.callback_url("acme"),
            &format!("gh-{id}-d"),
            &completed(&id),
        )
        .await;
    assert_eq!(s, 200);
    wait_for_patches(f, &url, 1).await;
    assert_eq!(test_status(f, &id).await["partner_status"], "complete");
}

pub async fn a_failing_patch_is_retried_until_greenhouse_takes_it_once(f: &Fixture) {
    let (url, id) = send_test(f).await;
    f.greenhouse.fail_next(2);
    let (s, _) = f
        .vendor
        .callback(
            &f.callback_url("acme"),
            &format!("gh-{id}-p"),
            &completed(&id),
        )
        .await;
    assert_eq!(s, 200, "the vendor is done whatever Greenhouse does");
    f.tick_until("the PATCH to be accepted", || {
        f.greenhouse.patches_for(&url).iter().any(|p| p.accepted)
    })
    .await;
    for _ in 0..3 {
        f.tick().await;
    }
    let patches = f.greenhouse.patches_for(&url);
    assert_eq!(
        patches.len(),
        3,
        "two failures, then one success: {patches:#?}"
    );
    assert_eq!(patches.iter().filter(|p| p.accepted).count(), 1);
    assert_eq!(test_status(f, &id).await["partner_status"], "complete");
}

pub async fn a_vendor_refusal_is_reported_by_test_status(f: &Fixture) {
    f.vendor.set_mode(VendorMode::Reject(
        "Candidate is outside our coverage area".into(),
    ));
    let (url, id) = send_test(f).await;
    f.vendor.set_mode(VendorMode::Accept);
    let st = test_status(f, &id).await;
    assert_eq!(st["partner_status"], "Not accepted by the provider", "{st}");
    assert_eq!(
        st["metadata"]["Reason"],
        "Candidate is outside our coverage area"
    );
    // Greenhouse is told to read it.
    f.tick_until("the PATCH after the refusal", || {
        f.greenhouse.patches_for(&url).iter().any(|p| p.accepted)
    })
    .await;
    // A repeat of the url is the same, refused test.
    assert_eq!(send_test_at(f, &url).await, id);
    assert_eq!(f.orders_for(&id).len(), 1);
}

/// A test the vendor ends without a result is a final state too: one PATCH, and test_status
/// says how it ended (never `complete`).
pub async fn a_test_the_vendor_ends_is_reported_once_as_its_final_state(f: &Fixture) {
    for (status, title) in [
        ("cancelled", "Cancelled"),
        ("failed", "Failed"),
        ("expired", "Expired"),
    ] {
        let (url, id) = send_test(f).await;
        let (s, _) = f
            .vendor
            .callback(
                &f.callback_url("acme"),
                &format!("gh-{id}-{status}"),
                &json!({"assessment_id": id, "status": status, "status_label": "Candidate withdrew"}),
            )
            .await;
        assert_eq!(s, 200);
        wait_for_patches(f, &url, 1).await;
        let st = test_status(f, &id).await;
        assert_eq!(st["partner_status"], title, "{st}");
        assert_eq!(st["metadata"]["Reason"], "Candidate withdrew");
        assert!(st.get("partner_profile_url").is_none(), "{st}");
        for _ in 0..2 {
            f.tick().await;
        }
        assert_eq!(f.greenhouse.patches_for(&url).len(), 1, "{status}");
    }
}

pub async fn a_response_error_is_recorded_against_its_test(f: &Fixture) {
    let (_, id) = send_test(f).await;
    let report = json!({"api_call": "test_status",
        "errors": ["partner_status is 'complete' but partner_profile url is missing"],
        "partner_test_id": f.type_id, "partner_test_name": "Criminal record check",
        "partner_interview_id": id, "candidate_email": CANDIDATE_EMAIL});
    f.assert_gh_valid(RESPONSE_ERROR_REQUEST, &report);
    let (s, b) = f
        .call("/greenhouse/response_error", &f.gh_key, &report)
        .await;
    assert_eq!(s, 200, "{b}");
    // Only the two guaranteed properties, and an id that is not ours: still 200.
    let (s, _) = f
        .call(
            "/greenhouse/response_error",
            &f.gh_key,
            &json!({"api_call": "list_tests", "errors": []}),
        )
        .await;
    assert_eq!(s, 200);
    let a = f
        .store()
        .assessment(AssessmentId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.ats_errors, 1);
    let last = a.last_ats_error.unwrap();
    assert!(last.starts_with("test_status: partner_status"), "{last}");
    assert!(!last.contains(CANDIDATE_EMAIL), "the email is never kept");
    // The report that named no assessment of the tenant's is kept on the tenant.
    let hooli = f
        .store()
        .list_tenants()
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.tenant.id.as_str() == "hooli")
        .unwrap();
    assert!(hooli.ats_errors >= 1, "{:?}", hooli.ats_errors);
    assert_eq!(hooli.last_ats_error.as_deref(), Some("list_tests: "));
    if let Host::Local(h) = &f.host {
        assert_eq!(
            h.app
                .metrics
                .total(hub::metrics::names::GREENHOUSE_RESPONSE_ERRORS),
            2.0
        );
    }
}

pub async fn tokens_of_another_ats_or_tenant_are_refused(f: &Fixture) {
    for (path, get) in [
        ("/greenhouse/list_tests", true),
        (
            "/greenhouse/test_status?partner_interview_id=6a2f41a3-c54c-4f5e-a8e5-2a1c1d8e7d10",
            true,
        ),
        ("/greenhouse/send_test", false),
        ("/greenhouse/response_error", false),
    ] {
        for token in [f.token.as_str(), "not-a-key"] {
            let (s, b) = if get {
                f.gh_get(path, token).await
            } else {
                f.call(path, token, &json!({})).await
            };
            assert_eq!(s, 401, "{path} with an Ashby or unknown token: {b}");
        }
    }
    for path in [
        "/assessment.list",
        "/assessment.start",
        "/assessment.cancel",
    ] {
        let (s, b) = f.call(path, &f.gh_key, &json!({})).await;
        assert_eq!(s, 401, "{path} with a Greenhouse key: {b}");
    }
    // Another tenant's assessment is not found for this one.
    let ashby_id = f.start_ok().await;
    let (s, b) = f
        .gh_get(
            &format!("/greenhouse/test_status?partner_interview_id={ashby_id}"),
            &f.gh_key,
        )
        .await;
    assert_eq!(s, 404, "{b}");
}

pub async fn hostile_greenhouse_requests_get_a_4xx_json_naming_the_problem(f: &Fixture) {
    let good = f.send_test_body(&f.type_id, &f.greenhouse.test_url());
    let with = |pointer: &str, v: Value| {
        let mut b = good.clone();
        *b.pointer_mut(pointer).unwrap() = v;
        b.to_string().into_bytes()
    };
    let without = |key: &str| {
        let mut b = good.clone();
        b.as_object_mut().unwrap().remove(key);
        b.to_string().into_bytes()
    };
    let auth = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{}:", f.gh_key)
        )
    );
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![], "empty"),
        (b"[]".to_vec(), "JSON object"),
        (b"{\"partner_test_id\":".to_vec(), "JSON"),
        (without("url"), "url"),
        (without("candidate"), "candidate"),
        (
            with("/candidate/email", json!("not an email")),
            "candidate.email",
        ),
        (with("/candidate/email", json!(7)), "candidate.email"),
        (
            with("/candidate/first_name", json!(null)),
            "candidate.first_name",
        ),
        (with("/url", json!("http://169.254.169.254/latest")), "url"),
        (with("/url", json!("https://10.0.0.8/tests/1")), "url"),
        (with("/url", json!("")), "url"),
        (
            with("/partner_test_id", json!("not-a-test")),
            "partner_test_id",
        ),
        (
            with("/partner_test_id", json!(f.disabled_type_id)),
            "partner_test_id",
        ),
        (
            with("/candidate/greenhouse_profile_url", json!("nope")),
            "greenhouse_profile_url",
        ),
        (vec![b'x'; 300 * 1024], "bytes"),
    ];
    for (body, names) in cases {
        let (s, b) = f
            .raw("/greenhouse/send_test", Some(&auth), body.clone())
            .await;
        assert!((400..500).contains(&s), "{s}: {b}");
        let message = b["message"].as_str().unwrap_or_default();
        assert!(message.contains(names), "{names}: {b}");
        assert!(!message.contains(CANDIDATE_FIRST) && !message.contains(CANDIDATE_LAST));
    }
    assert!(
        f.vendor
            .received()
            .iter()
            .all(|o| o.body["ats"] != "greenhouse"
                || o.body["candidate"]["email"] == CANDIDATE_EMAIL)
    );
    for (query, want) in [
        ("", 400),
        ("?partner_interview_id=", 400),
        ("?partner_interview_id=98765", 400),
        ("?partner_interview_id=%00%ff", 400),
        (
            "?partner_interview_id=6a2f41a3-c54c-4f5e-a8e5-2a1c1d8e7d10",
            404,
        ),
    ] {
        let (s, b) = f
            .gh_get(&format!("/greenhouse/test_status{query}"), &f.gh_key)
            .await;
        assert_eq!(s, want, "{query}: {b}");
        assert!(b["message"].is_string(), "{b}");
    }
    for (body, names) in [
        (b"{}".to_vec(), "api_call"),
        (br#"{"api_call":"x"}"#.to_vec(), "errors"),
        (br#"{"api_call":"x","errors":"boom"}"#.to_vec(), "errors"),
        (br#"{"api_call":"x","errors":[1]}"#.to_vec(), "errors"),
    ] {
        let (s, b) = f.raw("/greenhouse/response_error", Some(&auth), body).await;
        assert_eq!(s, 400, "{b}");
        assert!(
            b["message"].as_str().unwrap_or_default().contains(names),
            "{b}"
        );
    }
    // The GET routes refuse a POST, the POST routes a GET: 405 with a JSON body.
    let (s, b) = f
        .raw("/greenhouse/list_tests", Some(&auth), b"{}".to_vec())
        .await;
    assert_eq!(s, 405, "{b}");
    let (s, b) = f.gh_get("/greenhouse/send_test", &f.gh_key).await;
    assert_eq!(s, 405, "{b}");
}

/// Candidate data, the partner key and the vendor's words never reach a log line.
pub fn no_pii_or_key_in(f: &Fixture, logs: &[String]) {
    for secret in [
        CANDIDATE_EMAIL,
        CANDIDATE_FIRST,
        CANDIDATE_LAST,
        f.gh_key.as_str(),
    ] {
        let leaks: Vec<_> = logs.iter().filter(|l| l.contains(secret)).collect();
        assert!(leaks.is_empty(), "{secret:?} leaked into logs: {leaks:#?}");
    }
}

#[tokio::test]
async fn local_greenhouse_flow_repeats_and_concurrency() {
    let f = Fixture::local().await;
    a_greenhouse_test_runs_from_list_to_complete_with_one_patch(&f).await;
    a_repeated_send_test_returns_the_same_id_and_orders_nothing_new(&f).await;
    concurrent_send_tests_of_one_url_place_one_order(&f, 12).await;
    f.stop().await;
}

#[tokio::test]
async fn local_greenhouse_outages_refusals_and_errors() {
    let f = Fixture::local().await;
    a_vendor_down_at_send_time_gets_the_order_later_and_greenhouse_its_patch(&f).await;
    a_failing_patch_is_retried_until_greenhouse_takes_it_once(&f).await;
    a_vendor_refusal_is_reported_by_test_status(&f).await;
    a_test_the_vendor_ends_is_reported_once_as_its_final_state(&f).await;
    a_response_error_is_recorded_against_its_test(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn local_greenhouse_auth_and_hostile_input() {
    let f = Fixture::local().await;
    tokens_of_another_ats_or_tenant_are_refused(&f).await;
    hostile_greenhouse_requests_get_a_4xx_json_naming_the_problem(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn lambda_greenhouse_flow_repeats_concurrency_and_no_pii_in_logs() {
    let f = Fixture::lambda(3).await;
    a_greenhouse_test_runs_from_list_to_complete_with_one_patch(&f).await;
    a_repeated_send_test_returns_the_same_id_and_orders_nothing_new(&f).await;
    concurrent_send_tests_of_one_url_place_one_order(&f, 8).await;
    a_response_error_is_recorded_against_its_test(&f).await;
    no_pii_or_key_in(&f, &f.logs());
    f.stop().await;
}

#[tokio::test]
async fn lambda_greenhouse_outages_refusals_auth_and_hostile_input() {
    let f = Fixture::lambda(1).await;
    a_vendor_down_at_send_time_gets_the_order_later_and_greenhouse_its_patch(&f).await;
    a_failing_patch_is_retried_until_greenhouse_takes_it_once(&f).await;
    a_vendor_refusal_is_reported_by_test_status(&f).await;
    a_test_the_vendor_ends_is_reported_once_as_its_final_state(&f).await;
    tokens_of_another_ats_or_tenant_are_refused(&f).await;
    hostile_greenhouse_requests_get_a_4xx_json_naming_the_problem(&f).await;
    no_pii_or_key_in(&f, &f.logs());
    f.stop().await;
}
