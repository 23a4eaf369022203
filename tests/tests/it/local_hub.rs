//! The local hub (`hub-local`), in-process on its in-memory store: every scenario, plus what only
//! the local server does (routing, the demo with the sandbox vendor and the Ashby stand-in).

use std::time::Duration;

use crate::helpers::{Fixture, eventually};
use crate::scenarios as sc;

#[tokio::test]
async fn local_list_shows_the_enabled_packages() {
    let f = Fixture::local().await;
    sc::list_shows_the_enabled_packages(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn local_missing_or_unknown_token_gets_401() {
    let f = Fixture::local().await;
    sc::a_missing_or_unknown_token_gets_401_and_nothing_else(&f).await;
    sc::the_token_works_as_basic_password_or_bearer(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn local_full_lifecycle_reaches_ashby_exactly_as_specified() {
    let f = Fixture::local().await;
    sc::a_full_lifecycle_reaches_ashby_exactly_as_specified(&f).await;
    f.stop().await;
}

/// The business metrics count what happened (in memory here; EMF lines in Lambda).
#[tokio::test]
async fn local_metrics_count_starts_orders_callbacks_and_deliveries() {
    use hub::metrics::{dimensions, names};
    let f = Fixture::local().await;
    sc::a_full_lifecycle_reaches_ashby_exactly_as_specified(&f).await;
    let (s, _) = f
        .vendor
        .callback_raw(
            &f.callback_url("acme"),
            "wh-bad",
            b"{}",
            crate::helpers::RIVAL_SECRET,
            0,
        )
        .await;
    assert_eq!(s, 401);
    let crate::helpers::Host::Local(h) = &f.host else {
        unreachable!()
    };
    let m = &h.app.metrics;
    assert_eq!(m.total(names::ASSESSMENTS_STARTED), 1.0);
    assert_eq!(m.total(names::VENDOR_ORDERS_ACCEPTED), 1.0);
    assert_eq!(m.total(names::ASHBY_DELIVERIES_SUCCEEDED), 2.0);
    assert_eq!(m.total(names::ASHBY_DELIVERIES_DEAD), 0.0);
    assert_eq!(m.total(names::CALLBACKS_ACCEPTED), 4.0);
    assert_eq!(
        m.total_with(
            names::CALLBACKS_REJECTED,
            dimensions::REASON,
            "invalid_signature"
        ),
        1.0
    );
    f.stop().await;
}

#[tokio::test]
async fn local_repeated_start_returns_the_same_assessment() {
    let f = Fixture::local().await;
    sc::a_repeated_start_returns_the_same_assessment_and_orders_nothing_new(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn local_twenty_concurrent_starts_place_one_order() {
    let f = Fixture::local().await;
    sc::concurrent_identical_starts_place_exactly_one_order(&f, 20).await;
    f.stop().await;
}

#[tokio::test]
async fn local_malformed_start_is_a_400_naming_the_field() {
    let f = Fixture::local().await;
    sc::a_malformed_start_is_a_400_naming_the_field_and_orders_nothing(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn local_start_without_a_usable_candidate_email_is_a_422_for_the_recruiter() {
    let f = Fixture::local().await;
    sc::a_start_the_recruiter_can_fix_is_a_422_saying_what_to_do(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn local_start_with_an_application_status_outside_the_four_is_ordered() {
    let f = Fixture::local().await;
    sc::a_start_with_an_application_status_ashby_may_add_later_is_ordered(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn local_unknown_or_disabled_type_is_a_422() {
    let f = Fixture::local().await;
    sc::an_unknown_or_disabled_assessment_type_is_a_422_for_the_recruiter(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn local_vendor_rejection_reaches_the_recruiter() {
    let f = Fixture::local().await;
    sc::a_vendor_rejection_reaches_the_recruiter_verbatim(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn local_vendor_outage_queues_the_order_and_places_it_once() {
    let f = Fixture::local().await;
    sc::a_vendor_outage_queues_the_order_and_places_it_once_on_recovery(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn local_queued_order_refused_by_the_vendor_is_reported_to_ashby() {
    let f = Fixture::local().await;
    sc::a_queued_order_the_vendor_refuses_is_reported_to_ashby(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn local_ashby_outage_loses_and_doubles_nothing() {
    let f = Fixture::local().await;
    sc::an_ashby_outage_loses_and_doubles_nothing(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn local_refused_ashby_key_parks_deliveries_until_redelivered() {
    let f = Fixture::local().await;
    sc::a_refused_ashby_key_parks_deliveries_until_they_are_redelivered(&f).await;
    f.stop().await;
}

/// The local hub runs the delivery schedule itself: nobody ticks here.
#[tokio::test]
async fn the_local_hubs_own_schedule_delivers_after_an_ashby_outage() {
    let f = Fixture::local_with_retry_interval(Duration::from_millis(100)).await;
    let id = f.start_ok().await;
    f.ashby.set_mode(hub_tests::fakes::AshbyMode::ServerError);
    let (s, _) = f
        .vendor
        .callback(
            &f.callback_url("acme"),
            "wh-loop",
            &serde_json::json!({"assessment_id": id, "status": "in_progress"}),
        )
        .await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    f.ashby.set_mode(hub_tests::fakes::AshbyMode::Accept);
    let got = f.ashby.wait_for(&id, 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    f.stop().await;
}

#[tokio::test]
async fn local_cancel_during_a_vendor_outage_reaches_the_vendor_later() {
    let f = Fixture::local().await;
    sc::a_cancel_during_a_vendor_outage_reaches_the_vendor_later(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn local_a_queued_order_cancelled_before_its_retry_is_never_placed() {
    let f = Fixture::local().await;
    sc::a_queued_order_cancelled_before_its_retry_is_never_placed(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn local_twenty_identical_concurrent_callbacks_make_one_update() {
    let f = Fixture::local().await;
    sc::twenty_identical_concurrent_callbacks_make_one_update(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn local_cancel_racing_a_completion_ends_consistently() {
    let f = Fixture::local().await;
    sc::a_cancel_racing_a_completion_ends_consistently(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn local_callbacks_are_verified_validated_and_scoped() {
    let f = Fixture::local().await;
    sc::callbacks_are_verified_validated_and_scoped_to_their_vendor(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn local_cancel_stops_the_check_once_for_its_tenant_only() {
    let f = Fixture::local().await;
    sc::cancel_stops_the_check_once_and_only_for_its_tenant(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn local_oversized_body_is_a_413() {
    let f = Fixture::local().await;
    sc::an_oversized_body_is_a_413(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn local_unknown_routes_and_methods_get_json_errors() {
    let f = Fixture::local().await;
    let resp = reqwest::Client::new()
        .get(f.url("/assessment.list"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["errorInfo"]["code"], "method_not_allowed");
    let (s, b) = f.raw("/assessment.nope", None, b"{}".to_vec()).await;
    assert_eq!(s, 404, "{b}");
    f.stop().await;
}

/// The README's first command: the demo tenant, the sandbox vendor and the Ashby stand-in.
#[tokio::test]
async fn the_demo_hub_runs_a_whole_assessment_with_its_sandbox_vendor() {
    demo_round_trip(None).await;
}

/// The same with `--table`: DynamoDB and Secrets Manager (moto here) instead of memory.
#[tokio::test]
async fn the_demo_hub_runs_on_dynamodb_and_secrets_manager_with_table() {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "AWS_ENDPOINT_URL must point at the emulator: run ./infra/test.sh"
    );
    let table = format!("hub-local-{}", uuid::Uuid::new_v4());
    demo_round_trip(Some(table.clone())).await;
    let ddb = aws_sdk_dynamodb::Client::new(&hub_tests::aws::sdk_config().await);
    let items = ddb.scan().table_name(&table).send().await.unwrap();
    assert!(
        items.count() > 3,
        "tenants, vendors and the assessment are in the table"
    );
}

async fn demo_round_trip(table: Option<String>) {
    let hub = hub_local::server::start(hub_local::server::Options {
        port: 0,
        sandbox_delay: Duration::from_millis(100),
        quiet: true,
        table,
        ..Default::default()
    })
    .await
    .unwrap();
    let base = hub.base_url.as_str().trim_end_matches('/').to_owned();
    let token = hub.demo_token.clone().unwrap();
    let http = reqwest::Client::new();
    let list: serde_json::Value = http
        .post(format!("{base}/assessment.list"))
        .basic_auth(&token, Some(""))
        .body("{}")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let type_id = list["results"][0]["assessment_type_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let start = serde_json::json!({
        "assessment_type_id": type_id,
        "candidate": {"ashby_id": "c", "first_name": "Ada", "last_name": "L", "email": "ada@example.com",
                      "ashby_profile_url": "https://app.ashbyhq.com/c"},
        "application": {"ashby_id": "a", "status": "Active"},
        "job": {"ashby_id": "j", "name": "Engineer", "ashby_job_url": "https://app.ashbyhq.com/j"},
        "additional_fields": {"sandbox.criminal-basic.work_location": "uk"}
    });
    let resp = http
        .post(format!("{base}/assessment.start"))
        .basic_auth(&token, Some(""))
        .json(&start)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    let id = body["results"]["assessment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let updates = eventually(
        "the sandbox result in the Ashby stand-in",
        Duration::from_secs(10),
        || {
            let got: Vec<_> = hub
                .ashby
                .accepted()
                .into_iter()
                .filter(|u| u["assessment_id"] == id.as_str())
                .collect();
            (got.len() >= 2).then_some(got)
        },
    )
    .await;
    assert!(updates[1]["assessment_result"].is_object(), "{updates:#?}");
    let report = updates[1]["assessment_profile_url"]["value"]
        .as_str()
        .unwrap();
    let page = http.get(report).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200, "the Full report link opens");
    // The sandbox attached a PDF: the stand-in took it through the three upload steps.
    let files = eventually(
        "the sandbox's PDF on the candidate",
        Duration::from_secs(20),
        || {
            let f = hub.ashby.files.attached();
            (!f.is_empty()).then_some(f)
        },
    )
    .await;
    assert_eq!(files[0].candidate_id, "c");
    assert_eq!(files[0].content_type, "application/pdf");
    assert!(files[0].head.starts_with(b"%PDF-"), "{files:?}");
    assert_eq!(hub.ashby.files.violations(), Vec::<String>::new());
    hub.stop().await;
}

#[test]
fn the_local_hubs_copy_of_the_ashby_extras_matches_the_ground_truth() {
    let truth = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/ashby/extras-schemas.json"),
    )
    .unwrap();
    assert_eq!(
        hub_local::openapi::EMBEDDED_EXTRAS,
        truth,
        "infra/hub-local/ashby-extras-schemas.json drifted from ../shared: copy it again"
    );
}

#[test]
fn the_local_hubs_copy_of_the_ashby_spec_matches_the_ground_truth() {
    let truth = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/ashby/assessments-openapi.json"),
    )
    .unwrap();
    assert_eq!(
        hub_local::openapi::EMBEDDED_SPEC,
        truth,
        "infra/hub-local/ashby-openapi.json drifted from ../shared: copy it again"
    );
}

#[test]
fn the_local_hubs_copy_of_the_greenhouse_schemas_matches_the_ground_truth() {
    let truth = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/greenhouse/schemas.json"),
    )
    .unwrap();
    assert_eq!(
        hub_local::greenhouse_schemas::EMBEDDED_SCHEMAS,
        truth,
        "infra/hub-local/greenhouse-schemas.json drifted from ../shared: copy it again"
    );
}

/// The demo's Greenhouse tenant: the stand-in sends `send_test`, the sandbox vendor completes
/// the check, the hub PATCHes the stand-in, which reads a `complete` test_status (each body
/// checked against schemas.json by the stand-in, which refuses what does not conform).
#[tokio::test]
async fn the_demo_hub_runs_a_greenhouse_test_through_its_stand_in() {
    let hub = hub_local::server::start(hub_local::server::Options {
        port: 0,
        sandbox_delay: Duration::from_millis(100),
        quiet: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let base = hub.base_url.as_str().trim_end_matches('/').to_owned();
    let key = hub.demo_greenhouse_key.clone().unwrap();
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{base}/greenhouse-standin/send_test"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let sent: serde_json::Value = resp.json().await.unwrap();
    let id = sent["partner_interview_id"].as_str().unwrap().to_owned();
    let standin = hub.greenhouse.clone().unwrap();
    let status = eventually(
        "the stand-in to read a complete test",
        Duration::from_secs(15),
        || {
            standin
                .statuses()
                .into_iter()
                .find(|s| s["partner_status"] == "complete")
        },
    )
    .await;
    assert!(status["partner_profile_url"].as_str().is_some(), "{status}");
    // Greenhouse's own key works on the hub; the Ashby demo token does not.
    let (ok, refused) = (
        http.get(format!(
            "{base}/greenhouse/test_status?partner_interview_id={id}"
        ))
        .basic_auth(&key, Some(""))
        .send()
        .await
        .unwrap(),
        http.get(format!(
            "{base}/greenhouse/test_status?partner_interview_id={id}"
        ))
        .basic_auth(hub.demo_token.clone().unwrap(), Some(""))
        .send()
        .await
        .unwrap(),
    );
    assert_eq!(
        (ok.status().as_u16(), refused.status().as_u16()),
        (200, 401)
    );
    hub.stop().await;
}

/// The demo's customer that is not connected yet connects itself on its printed link, with the
/// Ashby stand-in's `apiKey.info` vouching for the demo key; the stand-in's answers for each demo
/// key match `extras-schemas.json`.
#[tokio::test]
async fn the_demo_s_unconnected_customer_connects_on_its_link() {
    let hub = hub_local::server::start(hub_local::server::Options {
        port: 0,
        quiet: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let base = hub.base_url.as_str().trim_end_matches('/').to_owned();
    let [(tenant, url)] = hub.connect_links.as_slice() else {
        panic!("one connect link in the demo: {:?}", hub.connect_links);
    };
    assert_eq!(tenant.as_str(), hub_local::config::DEMO_CONNECT_TENANT);
    assert!(url.starts_with(&format!("{base}/connect/")), "{url}");
    let http = reqwest::Client::new();
    let html = http.get(url).send().await.unwrap().text().await.unwrap();
    let at = html.find("name=\"connect-csrf\" content=\"").unwrap() + 29;
    let csrf = &html[at..at + html[at..].find('"').unwrap()];
    let post = |path: String, body: serde_json::Value| {
        http.post(path)
            .header("sec-fetch-site", "same-origin")
            .body(body.to_string())
            .send()
    };
    let token: serde_json::Value = post(format!("{url}/token"), serde_json::json!({"csrf": csrf}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    let list = http
        .post(format!("{base}/assessment.list"))
        .basic_auth(&token, Some(""))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    for (key, outcome) in [
        (
            hub_local::ashby_standin::DEMO_KEY_READ_ONLY,
            "missing_permission",
        ),
        ("not-a-demo-key", "refused"),
        (
            hub_local::ashby_standin::DEMO_KEY_NO_SCOPE_READ,
            "stored_unverified",
        ),
        (hub_local::config::DEMO_ASHBY_KEY, "stored"),
    ] {
        let saved: serde_json::Value = post(
            format!("{url}/ashby-key"),
            serde_json::json!({"csrf": csrf, "api_key": key}),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert_eq!(saved["outcome"], outcome, "{key}: {saved}");
    }
    let status: serde_json::Value = http
        .get(format!("{url}/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "connected", "{status}");

    // The stand-in's own answers, against the ground truth's schemas.
    let extras = hub_local::openapi::Extras::parse_named(
        "extras-schemas.json",
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/ashby/extras-schemas.json"),
        )
        .unwrap(),
    )
    .unwrap();
    for key in [
        hub_local::config::DEMO_ASHBY_KEY,
        hub_local::ashby_standin::DEMO_KEY_READ_ONLY,
        hub_local::ashby_standin::DEMO_KEY_NO_SCOPE_READ,
        "not-a-demo-key",
    ] {
        let resp = http
            .post(format!("{base}/ashby/apiKey.info"))
            .basic_auth(key, Some(""))
            .header("content-type", "application/json")
            .header("user-agent", "test")
            .header("ashby-version", "2026-01-01")
            .body("{}")
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = resp.json().await.unwrap();
        extras
            .check("ApiKeyInfoResponse", &body)
            .unwrap_or_else(|e| panic!("{key}: {body}: {e:?}"));
    }
    hub.stop().await;
}

/// With `--config`, a tenant given neither token nor key awaits connection and gets a link.
#[tokio::test]
async fn a_configured_tenant_without_token_and_key_gets_a_connect_link() {
    let hub = crate::helpers::start_local_hub(
        r#"
        [[tenants]]
        id = "globex"
        name = "Globex"
        "#,
        None,
        Duration::from_secs(60),
        &[],
    )
    .await;
    assert_eq!(hub.connect_links.len(), 1);
    assert_eq!(hub.connect_links[0].0.as_str(), "globex");
    let page = reqwest::get(&hub.connect_links[0].1).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Globex"));
    hub.stop().await;
}
