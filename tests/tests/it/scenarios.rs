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
    without(&["candidate", "ashby_id"], "candidate.ashby_id");
    without(&["application", "ashby_id"], "application.ashby_id");
    without(&["job", "ashby_job_url"], "job.ashby_job_url");
    without(&["assessment_type_id"], "assessment_type_id");
    let mut wrong = valid.clone();
    wrong["candidate"]["first_name"] = json!(42);
    cases.push((wrong, "candidate.first_name"));
    let mut bad_status = valid.clone();
    bad_status["application"]["status"] = json!(42);
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

/// A start the recruiter can put right in Ashby (the candidate's email address) is a 422, whose
/// message Ashby shows the recruiter: what is wrong and what to do, without the candidate's data.
pub async fn a_start_the_recruiter_can_fix_is_a_422_saying_what_to_do(f: &Fixture) {
    let before = f.vendor.received().len();
    let missing = "This candidate has no email address; add one in Ashby and start again.";
    let invalid = "This candidate's email address is not a valid email address; correct it in \
                   Ashby and start again.";
    let mut cases = Vec::new();
    for email in [json!(""), json!("   "), json!(null)] {
        cases.push((Some(email), missing));
    }
    cases.push((None, missing));
    for email in [
        "n/a",
        "ada.lovelace at candidate.example",
        "ada.lovelace@candidate",
    ] {
        cases.push((Some(json!(email)), invalid));
    }
    for (email, message) in cases {
        let mut body = f.start_body(&f.type_id, &crate::helpers::fresh_app());
        match &email {
            Some(e) => body["candidate"]["email"] = e.clone(),
            None => {
                body["candidate"].as_object_mut().unwrap().remove("email");
            }
        }
        let (s, b) = f.call("/assessment.start", &f.token, &body).await;
        assert_eq!(s, 422, "{email:?}: {b}");
        f.assert_valid("AssessmentStartCustomErrorResponse", &b);
        f.assert_valid("ErrorResponse", &b);
        assert_eq!(b["message"], message, "{email:?}");
        assert!(!b.to_string().contains("ada.lovelace"), "{b}");
    }
    assert_eq!(f.vendor.received().len(), before, "no vendor call");
}

/// The hub does not act on `application.status`: a status Ashby adds to its four (Hired,
/// Archived, Active, Lead) must not stop starts.
pub async fn a_start_with_an_application_status_ashby_may_add_later_is_ordered(f: &Fixture) {
    let mut body = f.start_body(&f.type_id, &crate::helpers::fresh_app());
    body["application"]["status"] = json!("Interviewing");
    let (s, b) = f.call("/assessment.start", &f.token, &body).await;
    assert_eq!(s, 200, "{b}");
    f.assert_valid("AssessmentStartSuccessResponse", &b);
    let id = b["results"]["assessment_id"].as_str().unwrap();
    assert_eq!(f.orders_for(id).len(), 1, "the order was placed");
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

/// Ashby may fire a start on stage entry with nobody there to retry: a vendor that is down must
/// not lose the order. The start is accepted as queued; the order goes out once the vendor is
/// back, with the same webhook-id; Ashby is told "Started"; a retried start orders nothing new.
pub async fn a_vendor_outage_queues_the_order_and_places_it_once_on_recovery(f: &Fixture) {
    f.vendor.set_mode(VendorMode::ServerError);
    let body = f.start_body(&f.type_id, &crate::helpers::fresh_app());
    let (s, b) = f.call("/assessment.start", &f.token, &body).await;
    assert_eq!(s, 200, "{b}");
    f.assert_valid("AssessmentStartSuccessResponse", &b);
    let id = b["results"]["assessment_id"].as_str().unwrap().to_owned();
    let status = b["results"]["update_request"]["assessment_status"]["value"]
        .as_str()
        .unwrap();
    assert!(
        status.starts_with("Queued"),
        "Ashby is told the truth: {status}"
    );
    assert!(!f.orders_for(&id).is_empty(), "tried inline");
    assert!(f.orders_for(&id).iter().all(|o| !o.accepted));

    // Still down: the schedule retries without placing anything.
    f.tick().await;
    f.tick().await;
    assert!(f.orders_for(&id).iter().all(|o| !o.accepted));

    f.vendor.set_mode(VendorMode::Accept);
    f.tick_until("the queued order to be placed", || {
        f.orders_for(&id).iter().any(|o| o.accepted)
    })
    .await;
    let orders = f.orders_for(&id);
    assert_eq!(
        orders.iter().filter(|o| o.accepted).count(),
        1,
        "placed once"
    );
    assert!(
        orders
            .iter()
            .all(|o| o.webhook_id == format!("msg_order_{id}")),
        "the same webhook-id on every try"
    );
    assert!(
        orders.windows(2).all(|w| w[0].body == w[1].body),
        "the same body"
    );
    let got = f.ashby.wait_for(&id, 1, WAIT).await;
    assert_eq!(got[0]["assessment_status"]["value"], "Started");

    // Ashby retrying the start now answers the same assessment and orders nothing.
    let (s, b2) = f.call("/assessment.start", &f.token, &body).await;
    assert_eq!(s, 200, "{b2}");
    assert_eq!(b2["results"]["assessment_id"], id.as_str());
    for _ in 0..3 {
        f.tick().await;
    }
    assert_eq!(f.orders_for(&id).len(), orders.len(), "nothing re-sent");
    assert_eq!(f.ashby.accepted_for(&id).len(), 1, "Started told once");
}

/// A vendor that refuses a queued order (its 422 once it is back) is reported to Ashby as a
/// cancellation carrying the vendor's words.
pub async fn a_queued_order_the_vendor_refuses_is_reported_to_ashby(f: &Fixture) {
    f.vendor.set_mode(VendorMode::ServerError);
    let id = {
        let (s, b) = f
            .call(
                "/assessment.start",
                &f.token,
                &f.start_body(&f.type_id, &crate::helpers::fresh_app()),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        b["results"]["assessment_id"].as_str().unwrap().to_owned()
    };
    f.vendor
        .set_mode(VendorMode::Reject("No consent form on file".into()));
    f.tick_until("the refusal to reach Ashby", || {
        !f.ashby.accepted_for(&id).is_empty()
    })
    .await;
    let got = f.ashby.accepted_for(&id);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0]["cancelled_reason"]["value"],
        "No consent form on file"
    );
    f.vendor.set_mode(VendorMode::Accept);
}

/// Ashby down, throttling, answering `success:false` or timing out: the vendor is answered 200
/// at once each time, and once Ashby recovers every update arrives exactly once, in order.
pub async fn an_ashby_outage_loses_and_doubles_nothing(f: &Fixture) {
    let id = f.start_ok().await;
    let cb = f.callback_url("acme");
    let in_progress =
        json!({"assessment_id": id, "status": "in_progress", "status_label": "Checking records"});
    let completed = json!({"assessment_id": id, "status": "completed", "report_url": "https://v.example/r/9",
                      "result": {"type": "boolean_success", "value": true, "label": "Clear"}});
    f.ashby.set_mode(AshbyMode::ServerError);
    let (s, b) = f.vendor.callback(&cb, "wh-o-1", &in_progress).await;
    assert_eq!(s, 200, "the vendor is done once the news is stored: {b}");
    let (s, _) = f.vendor.callback(&cb, "wh-o-2", &completed).await;
    assert_eq!(s, 200);
    for mode in [
        AshbyMode::RateLimited {
            retry_after_s: 0,
            partner_wide: false,
        },
        AshbyMode::SuccessFalse,
        AshbyMode::Hang(Duration::from_millis(2_500)),
        AshbyMode::RateLimited {
            retry_after_s: 0,
            partner_wide: true,
        },
    ] {
        f.ashby.set_mode(mode);
        f.tick().await;
        assert!(f.ashby.accepted_for(&id).is_empty(), "{mode:?}");
    }
    // The vendor retrying its callbacks changes nothing either.
    let (s, _) = f.vendor.callback(&cb, "wh-o-2", &completed).await;
    assert_eq!(s, 200);

    f.ashby.set_mode(AshbyMode::Accept);
    f.tick_until("both updates to reach Ashby", || {
        f.ashby.accepted_for(&id).len() >= 2
    })
    .await;
    for _ in 0..3 {
        f.tick().await;
    }
    let got = f.ashby.accepted_for(&id);
    assert_eq!(got.len(), 2, "each exactly once: {got:#?}");
    assert_eq!(
        got[0]["assessment_status"]["value"], "Checking records",
        "in order"
    );
    assert_eq!(got[1]["assessment_result"]["value"], true);
    assert!(got[0]["timestamp"].as_i64() < got[1]["timestamp"].as_i64());
}

/// Ashby refusing the tenant's key (revoked, or without Candidates write) parks its deliveries
/// with a clear reason instead of retrying blindly; once the key is fixed, an operator's
/// redelivery sends them, in order, once.
pub async fn a_refused_ashby_key_parks_deliveries_until_they_are_redelivered(f: &Fixture) {
    let id = f.start_ok().await;
    let cb = f.callback_url("acme");
    f.ashby.set_mode(AshbyMode::Unauthorized);
    let (s, _) = f
        .vendor
        .callback(
            &cb,
            "wh-p-1",
            &json!({"assessment_id": id, "status": "in_progress"}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = f
        .vendor
        .callback(
            &cb,
            "wh-p-2",
            &json!({"assessment_id": id, "status": "expired"}),
        )
        .await;
    assert_eq!(s, 200);
    let store = f.store();
    let aid = hub::domain::AssessmentId::parse(&id).unwrap();
    let parked = store.stuck_deliveries(100).await.unwrap();
    let mine: Vec<_> = parked.iter().filter(|d| d.assessment_id == aid).collect();
    assert_eq!(
        mine.len(),
        1,
        "the first is parked, the second waits behind it: {mine:#?}"
    );
    let reason = mine[0].state.reason().unwrap();
    assert!(reason.contains("401"), "a clear reason: {reason}");
    for _ in 0..3 {
        f.tick().await;
    }
    let tries = f.ashby.received().len();
    f.tick().await;
    assert_eq!(f.ashby.received().len(), tries, "parked: no blind retries");

    f.ashby.set_mode(AshbyMode::Accept);
    assert!(
        store
            .redeliver(
                aid,
                mine[0].seq,
                hub::clock::Clock::now(&hub::clock::SystemClock)
            )
            .await
            .unwrap()
    );
    f.tick_until("the parked updates to arrive", || {
        f.ashby.accepted_for(&id).len() >= 2
    })
    .await;
    f.tick().await;
    let got = f.ashby.accepted_for(&id);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(got[0]["assessment_status"].is_object());
    assert!(got[1]["cancelled_reason"].is_object());
}

/// A cancel while the vendor is down is answered at once and reaches the vendor once it is back.
pub async fn a_cancel_during_a_vendor_outage_reaches_the_vendor_later(f: &Fixture) {
    let id = f.start_ok().await;
    f.vendor.set_mode(VendorMode::ServerError);
    let (s, b) = f
        .call(
            "/assessment.cancel",
            &f.token,
            &json!({ "assessment_id": id }),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    f.vendor.set_mode(VendorMode::Accept);
    cancel_reaches_the_vendor_once(f, &id).await;
}

/// Ticks the schedule until the vendor accepted the cancel of `id`, then a few more times, and
/// checks it was accepted exactly once.
async fn cancel_reaches_the_vendor_once(f: &Fixture, id: &str) {
    let cancelled = || {
        f.vendor
            .of_type("assessment.cancelled")
            .into_iter()
            .filter(|o| o.body["assessment_id"] == id && o.accepted)
            .count()
    };
    f.tick_until("the cancel to reach the vendor", || cancelled() == 1)
        .await;
    for _ in 0..2 {
        f.tick().await;
    }
    assert_eq!(cancelled(), 1, "sent once it got through");
}

/// An order queued while the vendor was down, and cancelled after the vendor recovered but before
/// the queue retried it, is withdrawn, never placed: the vendor gets the cancel and no accepted
/// order.
pub async fn a_queued_order_cancelled_before_its_retry_is_never_placed(f: &Fixture) {
    f.vendor.set_mode(VendorMode::ServerError);
    let body = f.start_body(&f.type_id, &crate::helpers::fresh_app());
    let (s, b) = f.call("/assessment.start", &f.token, &body).await;
    assert_eq!(s, 200, "{b}");
    let id = b["results"]["assessment_id"].as_str().unwrap().to_owned();
    // Back up, but nothing has retried the order yet.
    f.vendor.set_mode(VendorMode::Accept);
    let (s, b) = f
        .call(
            "/assessment.cancel",
            &f.token,
            &json!({ "assessment_id": id }),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    cancel_reaches_the_vendor_once(f, &id).await;
    assert!(
        f.orders_for(&id).iter().all(|o| !o.accepted),
        "the order was withdrawn, never placed: {:?}",
        f.orders_for(&id)
    );
}

/// The same callback twenty times at once: one transition, one Ashby update.
pub async fn twenty_identical_concurrent_callbacks_make_one_update(f: &Fixture) {
    let id = f.start_ok().await;
    let cb = f.callback_url("acme");
    let body = json!({"assessment_id": id, "status": "completed", "report_url": "https://v.example/r/c",
                      "result": {"type": "numeric_score", "value": 3, "label": "Score"}});
    let calls = (0..20).map(|_| f.vendor.callback(&cb, "wh-same", &body));
    for (s, b) in futures::future::join_all(calls).await {
        assert_eq!(s, 200, "{b}");
    }
    f.tick().await;
    f.tick().await;
    assert_eq!(f.ashby.accepted_for(&id).len(), 1);
    // Twenty different webhook-ids with the same news: still one update.
    let ids: Vec<String> = (0..20).map(|i| format!("wh-{i}")).collect();
    let calls = ids.iter().map(|w| f.vendor.callback(&cb, w, &body));
    for (s, _) in futures::future::join_all(calls).await {
        assert_eq!(s, 200);
    }
    f.tick().await;
    assert_eq!(f.ashby.accepted_for(&id).len(), 1);
}

/// Ashby cancelling while the vendor reports completion: one consistent final state, reported
/// to Ashby at most once.
pub async fn a_cancel_racing_a_completion_ends_consistently(f: &Fixture) {
    for round in 0..4 {
        let id = f.start_ok().await;
        let completed = json!({"assessment_id": id, "status": "completed", "report_url": "https://v.example/r/x",
                               "result": {"type": "numeric_score", "value": 1, "label": "Score"}});
        let cb = f.callback_url("acme");
        let cancel_req = json!({ "assessment_id": id });
        let webhook_id = format!("wh-race-{round}");
        let (cancel, callback) = tokio::join!(
            f.call("/assessment.cancel", &f.token, &cancel_req),
            f.vendor.callback(&cb, &webhook_id, &completed),
        );
        assert_eq!(cancel.0, 200, "{}", cancel.1);
        assert_eq!(callback.0, 200, "{}", callback.1);
        f.tick().await;
        let updates = f.ashby.accepted_for(&id);
        let cancels = f
            .vendor
            .of_type("assessment.cancelled")
            .into_iter()
            .filter(|o| o.body["assessment_id"] == id.as_str())
            .count();
        // Either the cancel won (vendor told, Ashby needs no update: it cancelled) or the
        // completion won (Ashby gets the result once, nothing is cancelled at the vendor).
        match (cancels, updates.len()) {
            (1, 0) => {}
            (0, 1) => assert!(updates[0]["assessment_result"].is_object()),
            other => panic!("inconsistent outcome {other:?}: {updates:#?}"),
        }
    }
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
