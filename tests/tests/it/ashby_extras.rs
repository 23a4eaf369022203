//! The rest of Ashby's contract, on both deployment shapes: package options as custom fields
//! (`assessment.customField.list`, `additional_fields` checked on start and passed to the
//! vendor), report files put on the candidate (the three upload steps, once, through faults),
//! and the pinned `Ashby-Version` with its status watched.

use std::time::Duration;

use hub::domain::{AssessmentId, DeliveryKind};
use hub::metrics::names;
use hub_local::ashby_files::Faults;
use serde_json::{Value, json};

use crate::helpers::{Fixture, Host, fresh_app};

const WAIT: Duration = Duration::from_secs(10);

/// A small PDF, as a vendor's report would be.
fn pdf() -> Vec<u8> {
    hub_local::sandbox::pdf("Test report")
}

/// Starts `acme/panel` with `fields` as `additional_fields`.
async fn start_panel(f: &Fixture, fields: Value) -> (u16, Value) {
    let mut body = f.start_body(&f.panel_type_id, &fresh_app());
    body["additional_fields"] = fields;
    f.call("/assessment.start", &f.token, &body).await
}

pub async fn options_are_listed_checked_on_start_and_reach_the_vendor(f: &Fixture) {
    let (s, body) = f
        .call("/assessment.customField.list", &f.token, &json!({}))
        .await;
    assert_eq!(s, 200, "{body}");
    f.assert_valid("AssessmentCustomFieldListResponse", &body);
    let fields = body["fields"].as_array().unwrap();
    let ids: Vec<&str> = fields.iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["acme.panel.work_location", "acme.panel.note"],
        "{body}"
    );
    assert_eq!(fields[0]["isRequired"], true);
    assert_eq!(fields[0]["type"], "ValueSelect");
    assert_eq!(fields[0]["possible_values"][1]["key"], "uk");
    assert_eq!(fields[0]["name"], "Drug panel: Work location");
    assert_eq!(fields[1]["isRequired"], false);

    let before = f.vendor.received().len();
    for (given, message) in [
        (json!({}), "Choose a work location."),
        (
            json!({"acme.panel.work_location": "mars"}),
            "Choose a work location from the list: United States, United Kingdom.",
        ),
        (
            json!({"acme.panel.work_location": "", "acme.panel.note": "x"}),
            "Choose a work location.",
        ),
    ] {
        let (s, b) = start_panel(f, given.clone()).await;
        assert_eq!(s, 422, "{given}: {b}");
        f.assert_valid("AssessmentStartCustomErrorResponse", &b);
        assert_eq!(b["message"], message, "{given}");
    }
    assert_eq!(
        f.vendor.received().len(),
        before,
        "a refused start orders nothing"
    );

    // Given values reach the vendor under its own option ids; another package's are ignored.
    let (s, b) = start_panel(
        f,
        json!({"acme.panel.work_location": "uk", "acme.panel.note": "Night shift",
               "acme.criminal-basic.work_location": "us", "unknown": 1}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let id = b["results"]["assessment_id"].as_str().unwrap();
    let order = &f.orders_for(id)[0];
    assert_eq!(
        order.body["options"],
        json!({"work_location": "uk", "note": "Night shift"})
    );
    // Only options that were given.
    let (s, b) = start_panel(f, json!({"acme.panel.work_location": "us"})).await;
    assert_eq!(s, 200, "{b}");
    let id = b["results"]["assessment_id"].as_str().unwrap();
    assert_eq!(
        f.orders_for(id)[0].body["options"],
        json!({"work_location": "us"})
    );
    // A package without options orders as before: no `options` at all.
    let id = f.start_ok().await;
    assert!(f.orders_for(&id)[0].body.get("options").is_none());
    // Malformed additional_fields is the caller's error, named.
    let mut body = f.start_body(&f.panel_type_id, &fresh_app());
    body["additional_fields"] = json!(["not", "an", "object"]);
    let (s, b) = f.call("/assessment.start", &f.token, &body).await;
    assert_eq!(s, 400, "{b}");
    assert!(b.to_string().contains("additional_fields"), "{b}");
}

/// Completes `id` with `attachments`, posted under `webhook_id`.
async fn complete(f: &Fixture, id: &str, webhook_id: &str, attachments: Value) -> (u16, Value) {
    f.vendor
        .callback(
            &f.callback_url("acme"),
            webhook_id,
            &json!({"assessment_id": id, "status": "completed",
                    "result": {"type": "numeric_score", "value": 91, "label": "Score"},
                    "report_url": "https://vendor.example/reports/r-9",
                    "attachments": attachments}),
        )
        .await
}

/// The deliveries of one kind for an assessment, as an operator sees them.
async fn deliveries_of(f: &Fixture, id: &str, kind: DeliveryKind) -> Vec<hub::domain::Delivery> {
    let id = AssessmentId::parse(id).unwrap();
    f.store()
        .deliveries(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.kind == kind)
        .collect()
}

pub async fn a_report_file_is_put_on_the_candidate_once(f: &Fixture) {
    let id = f.start_ok().await;
    let name = format!("{id}.pdf");
    let url = f.vendor.serve_file(&name, "application/pdf", pdf());
    // An attachment field the protocol does not know (yet) is ignored, as in the rest of a callback.
    let files = json!([{"url": url, "filename": "report.pdf", "content_type": "application/pdf",
                        "a_field_added_later": true}]);
    let (s, b) = complete(f, &id, &format!("wh-{id}-done"), files.clone()).await;
    assert_eq!(s, 200, "{b}");
    // The result goes out at once, on its own.
    let got = f.ashby.wait_for(&id, 1, WAIT).await;
    assert_eq!(got[0]["assessment_result"]["value"], 91);
    f.tick_until("the file on the candidate", || {
        !f.ashby.files.attached().is_empty()
    })
    .await;
    // The same callback again, and the same news under a new webhook-id: no second file.
    let (s, _) = complete(f, &id, &format!("wh-{id}-done"), files.clone()).await;
    assert_eq!(s, 200);
    let (s, _) = complete(f, &id, &format!("wh-{id}-again"), files).await;
    assert_eq!(s, 200);
    for _ in 0..3 {
        f.tick().await;
    }
    let attached = f.ashby.files.attached();
    assert_eq!(attached.len(), 1, "{attached:#?}");
    assert_eq!(attached[0].candidate_id, "cand-1");
    assert_eq!(attached[0].filename, "report.pdf");
    assert_eq!(attached[0].content_type, "application/pdf");
    assert_eq!(attached[0].bytes, pdf().len());
    assert!(attached[0].head.starts_with(b"%PDF-"));
    assert_eq!(f.vendor.file_fetches(&name), 1);
    assert_eq!(f.ashby.files.violations(), Vec::<String>::new());
    let d = deliveries_of(f, &id, DeliveryKind::AtsFile).await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].state.name(), "delivered");
    assert_eq!(f.ashby.accepted_for(&id).len(), 1, "one update only");
    if let Host::Lambda(_) = &f.host {
        // What an operator sees: the file and its state, its name (the vendor's, which may name
        // the candidate) only with --reveal-pii, its URL never.
        for (args, shown) in [
            (
                vec!["assessment", "show", &id],
                "report file (application/pdf)",
            ),
            (
                vec!["assessment", "show", &id, "--reveal-pii"],
                "report file report.pdf (application/pdf)",
            ),
        ] {
            let (code, out, err) = f.hubctl(&args).await;
            assert_eq!(code, 0, "{err}");
            let line = out
                .lines()
                .find(|l| l.contains("ashby_file"))
                .unwrap_or_else(|| panic!("no file in {out}"));
            assert!(line.contains(shown), "{line}");
            assert!(line.contains("delivered"), "{line}");
            assert!(!out.contains(&url), "the download URL is not shown: {out}");
        }
    }
}

pub async fn an_upload_survives_ashby_failing_steps_1_and_3_and_an_expired_url(f: &Fixture) {
    let before = f.ashby.files.attached().len();
    f.ashby.files.set_faults(Faults {
        fail_handle: 1,
        fail_attach: 1,
        expire_upload: 1,
    });
    let id = f.start_ok().await;
    let url = f
        .vendor
        .serve_file(&format!("{id}.pdf"), "application/pdf", pdf());
    let (s, b) = complete(
        f,
        &id,
        &format!("wh-{id}-faults"),
        json!([{"url": url, "filename": "faults.pdf", "content_type": "application/pdf"}]),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    f.tick_until("the file through every fault", || {
        f.ashby.files.attached().len() > before
    })
    .await;
    for _ in 0..2 {
        f.tick().await;
    }
    let mine: Vec<_> = f
        .ashby
        .files
        .attached()
        .into_iter()
        .filter(|a| a.filename == "faults.pdf")
        .collect();
    assert_eq!(mine.len(), 1, "{mine:#?}");
    // Step 1 failed, then the URL expired (a new handle), then step 3 failed (from step 1 again).
    let calls = f.ashby.files.calls();
    let tail: Vec<&str> = calls[calls.len().saturating_sub(9)..]
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "handle", "handle", "storage", "handle", "storage", "attach", "handle", "storage",
            "attach"
        ],
        "{calls:?}"
    );
    let d = deliveries_of(f, &id, DeliveryKind::AtsFile).await;
    assert_eq!(d[0].state.name(), "delivered");
    assert!(d[0].attempts >= 2, "{d:?}");
    assert_eq!(f.ashby.files.violations(), Vec::<String>::new());
}

pub async fn a_file_over_10_mib_is_refused_and_the_result_still_delivered(f: &Fixture) {
    let before = f.ashby.files.attached().len();
    let id = f.start_ok().await;
    let big = vec![b'x'; 10 * 1024 * 1024 + 1];
    let big_url = f
        .vendor
        .serve_file(&format!("{id}-big.pdf"), "application/pdf", big);
    let wrong_url = f
        .vendor
        .serve_file(&format!("{id}-wrong.pdf"), "text/html", pdf());
    let (s, b) = complete(
        f,
        &id,
        &format!("wh-{id}-big"),
        json!([{"url": big_url, "filename": "big.pdf", "content_type": "application/pdf"},
               {"url": wrong_url, "filename": "wrong.pdf", "content_type": "application/pdf"}]),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let got = f.ashby.wait_for(&id, 1, WAIT).await;
    assert_eq!(got[0]["assessment_result"]["value"], 91);
    f.tick().await;
    let d = deliveries_of(f, &id, DeliveryKind::AtsFile).await;
    assert_eq!(d.len(), 2);
    for file in &d {
        assert_eq!(file.state.name(), "dead", "{file:?}");
    }
    let reasons: Vec<&str> = d.iter().filter_map(|x| x.state.reason()).collect();
    assert!(reasons[0].contains("larger than 10 MiB"), "{reasons:?}");
    assert!(reasons[1].contains("text/html"), "{reasons:?}");
    assert_eq!(f.ashby.files.attached().len(), before, "nothing uploaded");
    // Refused attachments in the callback itself are the vendor's 400, naming the field.
    let other = f.start_ok().await;
    for (i, bad, word) in [
        (
            json!([{"url": "https://v.example/a", "filename": "a.html", "content_type": "text/html"}]),
            "content_type",
        ),
        (
            json!([{"url": "https://v.example/a", "filename": "../a.pdf", "content_type": "application/pdf"}]),
            "filename",
        ),
        (
            json!([{"url": "ftp://v.example/a", "filename": "a.pdf", "content_type": "application/pdf"}]),
            "url",
        ),
        (
            Value::Array(vec![
                json!({"url": "https://v.example/a", "filename": "a.pdf", "content_type": "application/pdf"});
                6
            ]),
            "more than 5",
        ),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (bad, word))| (i, bad, word))
    {
        let (s, b) = complete(f, &other, &format!("wh-{other}-bad-{i}"), bad).await;
        assert_eq!(s, 400, "{word}: {b}");
        assert!(b.to_string().contains(word), "{word}: {b}");
    }
}

pub async fn every_ashby_call_pins_the_version_and_a_deprecation_is_noticed(f: &Fixture) {
    f.ashby.set_version_status("deprecated");
    let id = f.start_ok().await;
    let url = f
        .vendor
        .serve_file(&format!("{id}-v.pdf"), "application/pdf", pdf());
    let (s, _) = complete(
        f,
        &id,
        &format!("wh-{id}-v"),
        json!([{"url": url, "filename": "v.pdf", "content_type": "application/pdf"}]),
    )
    .await;
    assert_eq!(s, 200);
    f.ashby.wait_for(&id, 1, WAIT).await;
    f.tick_until("the versioned upload", || {
        f.ashby
            .files
            .attached()
            .iter()
            .any(|a| a.filename == "v.pdf")
    })
    .await;
    f.ashby.set_version_status("active");
    let received = f.ashby.received();
    assert!(!received.is_empty());
    for u in &received {
        assert_eq!(u.version.as_deref(), Some("2026-01-01"), "{u:?}");
    }
    // The file steps check the header too: a missing one would be a violation.
    assert_eq!(f.ashby.files.violations(), Vec::<String>::new());
    match &f.host {
        Host::Local(h) => {
            assert!(
                h.app.metrics.total(names::ASHBY_VERSION_NOT_ACTIVE) >= 1.0,
                "counted"
            );
        }
        Host::Lambda(_) => {
            let logs = f.logs();
            assert!(
                logs.iter().any(|l| l.contains("\"AshbyVersionNotActive\"")),
                "an EMF line counts the deprecated version"
            );
            let warnings = logs
                .iter()
                .filter(|l| l.contains("no longer active"))
                .count();
            assert!(warnings >= 1, "a warning names the deprecation");
        }
    }
}

#[tokio::test]
async fn local_ashby_options_files_and_version() {
    let f = Fixture::local().await;
    options_are_listed_checked_on_start_and_reach_the_vendor(&f).await;
    a_report_file_is_put_on_the_candidate_once(&f).await;
    an_upload_survives_ashby_failing_steps_1_and_3_and_an_expired_url(&f).await;
    a_file_over_10_mib_is_refused_and_the_result_still_delivered(&f).await;
    every_ashby_call_pins_the_version_and_a_deprecation_is_noticed(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn lambda_ashby_options_files_and_version() {
    let f = Fixture::lambda(1).await;
    options_are_listed_checked_on_start_and_reach_the_vendor(&f).await;
    a_report_file_is_put_on_the_candidate_once(&f).await;
    an_upload_survives_ashby_failing_steps_1_and_3_and_an_expired_url(&f).await;
    a_file_over_10_mib_is_refused_and_the_result_still_delivered(&f).await;
    every_ashby_call_pins_the_version_and_a_deprecation_is_noticed(&f).await;
    f.stop().await;
}
