//! Behaviour every deployment shape must show, written once and run against both the local hub
//! and the compiled Lambda functions. Each scenario asserts what Ashby, a recruiter or a vendor
//! would notice: status codes, bodies valid against Ashby's spec, orders placed, updates received.

use std::time::Duration;

use base64::Engine;
use hub_tests::fakes::{AshbyMode, VendorMode};
use serde_json::{Value, json};

use crate::helpers::{CANDIDATE_EMAIL, CANDIDATE_FIRST, CANDIDATE_LAST, Fixture, RIVAL_SECRET};

const WAIT: Duration = Duration::from_secs(10);

pub async fn list_shows_the_enabled_packages(f: &Fixture) {
    let (status, body) = f.call("/assessment.list", &f.token, &json!({})).await;
    assert_eq!(status, 200, "{body}");
    f.assert_valid("AssessmentListResponse", &body);
    assert_eq!(body["success"], true);
    let results = body["results"].as_array().unwrap();
    let ids: Vec<&str> = results
        .iter()
        .map(|r| r["assessment_type_id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&f.type_id.as_str()), "{body}");
    assert!(ids.contains(&f.rival_type_id.as_str()), "{body}");
    assert!(!ids.contains(&f.disabled_type_id.as_str()), "{body}");
    let acme = results
        .iter()
        .find(|r| r["assessment_type_id"] == f.type_id.as_str())
        .unwrap();
    assert_eq!(acme["name"], "Criminal record check");
}

pub async fn a_missing_or_unknown_token_gets_401_and_nothing_else(f: &Fixture) {
    let basic = |s: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    };
    for auth in [
        None,
        Some("Bearer not-a-token".to_owned()),
        Some(basic("not-a-token:")),
        Some(basic(&format!("{}:also-a-password", f.token))),
        Some("Basic !!!".to_owned()),
    ] {
        for path in [
            "/assessment.list",
            "/assessment.start",
            "/assessment.cancel",
        ] {
            let (status, body) = f.raw(path, auth.as_deref(), b"{}".to_vec()).await;
            assert_eq!(status, 401, "{path} {auth:?}: {body}");
            f.assert_valid("ErrorResponse", &body);
            assert!(body.get("results").is_none());
        }
    }
}

pub async fn the_token_works_as_basic_password_or_bearer(f: &Fixture) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!(":{}", f.token));
    for auth in [format!("Basic {b64}"), format!("Bearer {}", f.token)] {
        let (status, body) = f.raw("/assessment.list", Some(&auth), b"{}".to_vec()).await;
        assert_eq!(status, 200, "{auth}: {body}");
    }
}

/// list → start → in_progress → completed, with duplicates and a late in_progress ignored.
pub async fn a_full_lifecycle_reaches_ashby_exactly_as_specified(f: &Fixture) {
    let id = f.start_ok().await;

    let orders = f.vendor.of_type("assessment.requested");
    assert_eq!(orders.len(), 1, "one order: {orders:#?}");
    let order = &orders[0];
    assert!(order.signature_ok, "order signature must verify");
    assert_eq!(order.webhook_id, format!("msg_order_{id}"));
    let b = &order.body;
    assert_eq!(b["assessment_id"], id.as_str());
    assert_eq!(b["package_id"], "criminal-basic");
    assert_eq!(b["candidate"]["email"], CANDIDATE_EMAIL);
    assert_eq!(b["candidate"]["first_name"], CANDIDATE_FIRST);
    assert_eq!(b["candidate"]["last_name"], CANDIDATE_LAST);
    assert_eq!(
        b["job"],
        json!({"id": "job-1", "name": "Backend Engineer", "req_id": "ENG-142"})
    );
    assert_eq!(b["callback_url"], f.callback_url("acme").as_str());
    assert!(b["application_id"].as_str().unwrap().starts_with("app-"));

    let cb = f.callback_url("acme");
    let (s, body) = f
        .vendor
        .callback(
            &cb,
            &format!("wh-{id}-1"),
            &json!({"assessment_id": id, "status": "in_progress", "status_label": "Awaiting candidate consent",
                    "metadata": [{"identifier": "eta", "label": "ETA", "type": "string", "value": "3 days"}]}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let got = f.ashby.wait_for(&id, 1, WAIT).await;
    assert_eq!(
        got[0]["assessment_status"]["value"],
        "Awaiting candidate consent"
    );
    assert_eq!(got[0]["metadata"][0]["identifier"], "eta");

    let completed = json!({
        "assessment_id": id, "status": "completed", "status_label": "Clear",
        "result": {"type": "numeric_score", "value": 87, "label": "Score", "description": "Hidden tests passed"},
        "report_url": "https://vendor.example/reports/r-1",
        "metadata": [{"identifier": "duration", "label": "Time taken", "type": "numeric_duration_minutes", "value": 74}]
    });
    let (s, body) = f
        .vendor
        .callback(&cb, &format!("wh-{id}-2"), &completed)
        .await;
    assert_eq!(s, 200, "{body}");
    let got = f.ashby.wait_for(&id, 2, WAIT).await;
    let done = &got[1];
    assert_eq!(done["assessment_result"]["value"], 87);
    assert_eq!(done["assessment_result"]["type"], "numeric_score");
    assert_eq!(done["assessment_profile_url"]["type"], "url");
    assert_eq!(
        done["assessment_profile_url"]["value"],
        "https://vendor.example/reports/r-1"
    );
    assert_eq!(done["assessment_profile_url"]["label"], "Full report");
    assert_eq!(done["metadata"][0]["value"], 74);
    assert!(
        done["timestamp"].as_i64().unwrap() > got[0]["timestamp"].as_i64().unwrap(),
        "timestamps must increase"
    );

    // The same webhook again, and a stale in_progress after completion: nothing reaches Ashby.
    let (s, _) = f
        .vendor
        .callback(&cb, &format!("wh-{id}-2"), &completed)
        .await;
    assert_eq!(s, 200);
    let (s, _) = f
        .vendor
        .callback(
            &cb,
            &format!("wh-{id}-3"),
            &json!({"assessment_id": id, "status": "in_progress"}),
        )
        .await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(f.ashby.accepted_for(&id).len(), 2);
    let all = f.ashby.received();
    assert!(
        all.iter().all(|u| u.violations.is_empty()),
        "every update must satisfy Ashby's contract: {all:#?}"
    );
    assert!(
        f.other_ashby.received().is_empty(),
        "one tenant's updates never reach another tenant's Ashby"
    );
}

pub async fn a_repeated_start_returns_the_same_assessment_and_orders_nothing_new(f: &Fixture) {
    let body = f.start_body(&f.type_id, &crate::helpers::fresh_app());
    let (s1, b1) = f.call("/assessment.start", &f.token, &body).await;
    let (s2, b2) = f.call("/assessment.start", &f.token, &body).await;
    assert_eq!((s1, s2), (200, 200), "{b1} {b2}");
    assert_eq!(
        b1["results"]["assessment_id"],
        b2["results"]["assessment_id"]
    );
    f.assert_valid("AssessmentStartSuccessResponse", &b2);
    let id = b1["results"]["assessment_id"].as_str().unwrap();
    assert_eq!(f.orders_for(id).len(), 1, "one order for a repeated start");
    // Another tenant's start for an application with the same id is its own assessment.
    let (s3, b3) = f.call("/assessment.start", &f.other_token, &body).await;
    assert_eq!(s3, 200, "{b3}");
    assert_ne!(
        b1["results"]["assessment_id"],
        b3["results"]["assessment_id"]
    );
}

pub async fn concurrent_identical_starts_place_exactly_one_order(f: &Fixture, n: usize) {
    let body = f.start_body(&f.type_id, &crate::helpers::fresh_app());
    let calls = (0..n).map(|_| f.call("/assessment.start", &f.token, &body));
    let results = futures::future::join_all(calls).await;
    let ids: std::collections::HashSet<String> = results
        .iter()
        .map(|(s, b)| {
            assert_eq!(*s, 200, "{b}");
            b["results"]["assessment_id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "all starts must answer the same assessment: {ids:?}"
    );
    let id = ids.into_iter().next().unwrap();
    assert_eq!(f.orders_for(&id).len(), 1, "exactly one vendor order");
}

pub async fn a_malformed_start_is_a_400_naming_the_field_and_orders_nothing(f: &Fixture) {
    let valid = f.start_body(&f.type_id, "app-malformed");
    let before = f.vendor.received().len();
    let mut cases: Vec<(Value, &str)> = Vec::new();
    let mut without = |path: &[&str], field: &'static str| {
        let mut v = valid.clone();
        let (last, parents) = path.split_last().unwrap();
        let mut cur = &mut v;
        for p in parents {
            cur = &mut cur[*p];
        }
        cur.as_object_mut().unwrap().remove(*last);
        cases.push((v, field));
    };
    without(&["candidate", "email"], "candidate.email");
    without(&["application", "ashby_id"], "application.ashby_id");
    without(&["job", "ashby_job_url"], "job.ashby_job_url");
    without(&["assessment_type_id"], "assessment_type_id");
    let mut wrong = valid.clone();
    wrong["candidate"]["first_name"] = json!(42);
    cases.push((wrong, "candidate.first_name"));
    let mut bad_status = valid.clone();
    bad_status["application"]["status"] = json!("Interviewing");
    cases.push((bad_status, "application.status"));
    let mut bad_uuid = valid.clone();
    bad_uuid["assessment_type_id"] = json!("criminal-basic");
    cases.push((bad_uuid, "assessment_type_id"));
    let mut bad_team = valid.clone();
    bad_team["job"]["hiringTeam"][0]["userId"] = json!("nope");
    cases.push((bad_team, "job.hiringTeam[0].userId"));
    for (body, field) in cases {
        let (s, b) = f.call("/assessment.start", &f.token, &body).await;
        assert_eq!(s, 400, "{field}: {b}");
        let msg = b["message"].as_str().unwrap();
        assert!(msg.contains(field), "message {msg:?} must name {field}");
        assert!(!msg.contains(CANDIDATE_EMAIL));
        f.assert_valid("ErrorResponse", &b);
    }
    for raw in [
        &b"{\"assessment_type_id\": "[..],
        b"",
        b"[]",
        b"null",
        b"\xff\xfe",
    ] {
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:", f.token))
        );
        let (s, b) = f.raw("/assessment.start", Some(&auth), raw.to_vec()).await;
        assert_eq!(s, 400, "{raw:?}: {b}");
    }
    assert_eq!(
        f.vendor.received().len(),
        before,
        "no vendor call for bad input"
    );
}

pub async fn an_unknown_or_disabled_assessment_type_is_a_422_for_the_recruiter(f: &Fixture) {
    let before = f.vendor.received().len();
    for type_id in [f.disabled_type_id.clone(), uuid::Uuid::new_v4().to_string()] {
        let (s, b) = f
            .call(
                "/assessment.start",
                &f.token,
                &f.start_body(&type_id, "app-x"),
            )
            .await;
        assert_eq!(s, 422, "{b}");
        f.assert_valid("AssessmentStartCustomErrorResponse", &b);
        assert!(b["message"].as_str().unwrap().contains("not available"));
    }
    assert_eq!(f.vendor.received().len(), before, "no vendor call");
}

pub async fn a_vendor_rejection_reaches_the_recruiter_verbatim(f: &Fixture) {
    f.vendor.set_mode(VendorMode::Reject(
        "Candidate is outside our coverage area".into(),
    ));
    let (s, b) = f
        .call(
            "/assessment.start",
            &f.token,
            &f.start_body(&f.type_id, "app-rej"),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    f.assert_valid("AssessmentStartCustomErrorResponse", &b);
    assert_eq!(b["message"], "Candidate is outside our coverage area");
    // The rejected assessment is finished: a new start after the fix orders again.
    f.vendor.set_mode(VendorMode::Accept);
    let (s, b2) = f
        .call(
            "/assessment.start",
            &f.token,
            &f.start_body(&f.type_id, "app-rej"),
        )
        .await;
    assert_eq!(s, 200, "{b2}");
}

pub async fn a_vendor_outage_is_a_clear_503_and_a_retried_start_orders_once(f: &Fixture) {
    f.vendor.set_mode(VendorMode::ServerError);
    let body = f.start_body(&f.type_id, &crate::helpers::fresh_app());
    let before = f.vendor.of_type("assessment.requested").len();
    let (s, b) = f.call("/assessment.start", &f.token, &body).await;
    assert_eq!(s, 503, "{b}");
    f.assert_valid("ErrorResponse", &b);
    assert!(
        b["message"].as_str().unwrap().contains("Acme Checks"),
        "{b}"
    );
    let tries = f.vendor.of_type("assessment.requested").len() - before;
    assert!(tries >= 2, "bounded retry expected: {tries}");

    f.vendor.set_mode(VendorMode::Accept);
    let (s, b) = f.call("/assessment.start", &f.token, &body).await;
    assert_eq!(s, 200, "{b}");
    let id = b["results"]["assessment_id"].as_str().unwrap();
    let all = f.vendor.of_type("assessment.requested")[before..].to_vec();
    assert!(
        all.iter().all(|o| o.body["assessment_id"] == id),
        "one assessment id throughout"
    );
    assert!(
        all.iter()
            .all(|o| o.webhook_id == format!("msg_order_{id}")),
        "the same webhook-id on every try"
    );
    let (s, b2) = f.call("/assessment.start", &f.token, &body).await;
    assert_eq!(s, 200);
    assert_eq!(b2["results"]["assessment_id"], id);
    assert_eq!(
        f.orders_for(id).len(),
        all.len(),
        "no new order once placed"
    );
}

pub async fn callbacks_are_verified_validated_and_scoped_to_their_vendor(f: &Fixture) {
    let id = f.start_ok().await;
    let cb = f.callback_url("acme");
    let good = json!({"assessment_id": id, "status": "in_progress"});
    let text = good.to_string();

    let (s, _) = f
        .vendor
        .callback_raw(&cb, "wh-a", text.as_bytes(), RIVAL_SECRET, 0)
        .await;
    assert_eq!(s, 401, "wrong secret");
    let (s, _) = f
        .vendor
        .callback_raw(
            &cb,
            "wh-b",
            text.as_bytes(),
            crate::helpers::VENDOR_SECRET,
            -600,
        )
        .await;
    assert_eq!(s, 401, "stale timestamp");
    let (s, _) = f
        .vendor
        .callback_raw(
            &cb,
            "wh-c",
            text.as_bytes(),
            crate::helpers::VENDOR_SECRET,
            600,
        )
        .await;
    assert_eq!(s, 401, "future timestamp");
    let (s, b) = f
        .raw(
            &cb.replace(&f.base_url, ""),
            None,
            text.clone().into_bytes(),
        )
        .await;
    assert_eq!(s, 401, "unsigned: {b}");

    let (s, b) = f
        .vendor
        .callback(&cb, "wh-d", &json!({"assessment_id": id, "status": "done"}))
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(b["message"].as_str().unwrap().contains("status"), "{b}");
    let (s, b) = f
        .vendor
        .callback(
            &cb,
            "wh-e",
            &json!({"assessment_id": id, "status": "completed"}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(b["message"].as_str().unwrap().contains("report_url"), "{b}");

    let (s, _) = f
        .vendor
        .callback(
            &cb,
            "wh-f",
            &json!({"assessment_id": uuid::Uuid::new_v4(), "status": "in_progress"}),
        )
        .await;
    assert_eq!(s, 404, "unknown assessment");
    let (s, _) = f
        .rival
        .callback(&f.callback_url("rival"), "wh-g", &good)
        .await;
    assert_eq!(s, 404, "another vendor's assessment");
    for vendor in ["nobody", "..%2Facme", "ACME", "a%00b"] {
        let (s, _) = f
            .vendor
            .callback(&f.callback_url(vendor), "wh-h", &good)
            .await;
        assert_eq!(s, 404, "vendor {vendor}");
    }
    assert!(
        f.ashby.accepted_for(&id).is_empty(),
        "nothing reached Ashby"
    );
}

pub async fn an_ashby_outage_makes_the_vendor_retry_and_the_update_arrives_once(f: &Fixture) {
    let id = f.start_ok().await;
    let cb = f.callback_url("acme");
    let body = json!({"assessment_id": id, "status": "completed", "report_url": "https://v.example/r/9",
                      "result": {"type": "boolean_success", "value": true, "label": "Clear"}});
    f.ashby.set_mode(AshbyMode::ServerError);
    let (s, b) = f.vendor.callback(&cb, "wh-outage", &body).await;
    assert_eq!(s, 503, "{b}");
    f.ashby.set_mode(AshbyMode::SuccessFalse);
    let (s, _) = f.vendor.callback(&cb, "wh-outage", &body).await;
    assert_eq!(s, 503, "success:false from Ashby is a failure");
    f.ashby.set_mode(AshbyMode::Accept);
    let (s, b) = f.vendor.callback(&cb, "wh-outage", &body).await;
    assert_eq!(s, 200, "{b}");
    let (s, _) = f.vendor.callback(&cb, "wh-outage", &body).await;
    assert_eq!(s, 200);
    let got = f.ashby.accepted_for(&id);
    assert_eq!(got.len(), 1, "delivered exactly once: {got:#?}");
    assert_eq!(got[0]["assessment_result"]["value"], true);
}

pub async fn cancel_stops_the_check_once_and_only_for_its_tenant(f: &Fixture) {
    let id = f.start_ok().await;
    let req = json!({ "assessment_id": id });
    let (s, b) = f.call("/assessment.cancel", &f.other_token, &req).await;
    assert_eq!(s, 404, "another tenant's assessment: {b}");
    f.assert_valid("ErrorResponse", &b);
    f.assert_valid("AssessmentCancelResponse", &b);
    assert!(f.vendor.of_type("assessment.cancelled").is_empty());

    let (s, b) = f.call("/assessment.cancel", &f.token, &req).await;
    assert_eq!(s, 200, "{b}");
    f.assert_valid("AssessmentCancelResponse", &b);
    assert_eq!(
        b,
        json!({"success": true, "results": {"assessment_id": id}})
    );
    let cancels = f.vendor.of_type("assessment.cancelled");
    assert_eq!(cancels.len(), 1);
    assert!(cancels[0].signature_ok);
    assert_eq!(cancels[0].webhook_id, format!("msg_cancel_{id}"));
    assert_eq!(
        cancels[0].body,
        json!({"type": "assessment.cancelled", "assessment_id": id})
    );

    let (s, b) = f.call("/assessment.cancel", &f.token, &req).await;
    assert_eq!(s, 200, "cancelling twice: {b}");
    assert_eq!(f.vendor.of_type("assessment.cancelled").len(), 1);

    let (s, b) = f
        .call(
            "/assessment.cancel",
            &f.token,
            &json!({"assessment_id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(s, 404, "{b}");
    f.assert_valid("AssessmentCancelResponse", &b);
    assert_eq!(b["success"], false);
    assert_eq!(b["errorInfo"]["code"], "assessment_not_found");
    let (s, b) = f
        .call(
            "/assessment.cancel",
            &f.token,
            &json!({"assessment_id": "42"}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(b["message"].as_str().unwrap().contains("assessment_id"));

    // A result arriving after the cancel changes nothing in Ashby.
    let (s, _) = f
        .vendor
        .callback(
            &f.callback_url("acme"),
            "wh-late",
            &json!({"assessment_id": id, "status": "completed", "report_url": "https://v.example/r"}),
        )
        .await;
    assert_eq!(s, 200);
    assert!(f.ashby.accepted_for(&id).is_empty());
}

pub async fn an_oversized_body_is_a_413(f: &Fixture) {
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:", f.token))
    );
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(300 * 1024));
    let (s, b) = f
        .raw("/assessment.start", Some(&auth), big.clone().into_bytes())
        .await;
    assert_eq!(s, 413, "{b}");
    let (s, _) = f
        .vendor
        .callback(
            &f.callback_url("acme"),
            "wh-big",
            &serde_json::from_str(&big).unwrap(),
        )
        .await;
    assert_eq!(s, 413);
}
