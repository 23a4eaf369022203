//! The customer's connect page (`/connect/<code>`), on the local hub (memory store) and on the
//! compiled Lambda functions (DynamoDB on moto): every route, the one-time token, rotation that
//! ends on Ashby's first call with the new token, each `apiKey.info` answer, forged POSTs,
//! dead links, the failure limits, and the tenant health a refused key leaves.

use std::time::Duration;

use hub::clock::Timestamp;
use hub::domain::connect::generate_connect_code;
use hub::domain::{Ats, DeliveryHealth, Invite, Tenant, TenantId, TokenHash};
use hub::ports::AdminStore;
use hub_tests::fakes::{AshbyMode, KeyInfoMode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::helpers::Fixture;

const DAY: Duration = Duration::from_secs(86_400);

fn now() -> Timestamp {
    Timestamp::from_ms(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    )
}

/// A connect link for `tenant` that expires at `expires` (relative to now), as `hubctl tenant
/// invite` stores one: the page's path and the invite.
async fn invite(store: &dyn AdminStore, tenant: &str, valid_for: Duration) -> (String, Invite) {
    invite_expiring(store, tenant, now() + valid_for).await
}

async fn invite_expiring(
    store: &dyn AdminStore,
    tenant: &str,
    expires_at_ms: Timestamp,
) -> (String, Invite) {
    let code = generate_connect_code();
    let invite = Invite {
        hash: TokenHash::of(&code),
        tenant_id: TenantId::parse(tenant).unwrap(),
        created_at_ms: now(),
        expires_at_ms,
        revoked_at_ms: None,
        token_shown_at_ms: None,
    };
    assert_eq!(
        store.create_invite(&invite).await.unwrap(),
        hub::ports::RegistryOutcome::Done
    );
    (format!("/connect/{}", code.expose_secret()), invite)
}

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

async fn get(f: &Fixture, path: &str) -> Page {
    let resp = reqwest::get(f.url(path)).await.unwrap();
    Page {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        text: resp.text().await.unwrap(),
    }
}

fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"connect-csrf\" content=\"")
        .expect("csrf meta")
        + 29;
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

async fn status(f: &Fixture, page: &str) -> Value {
    let p = get(f, &format!("{page}/status")).await;
    assert_eq!(p.status, 200, "{}", p.text);
    serde_json::from_str(&p.text).unwrap()
}

/// How a POST presents itself.
#[derive(Clone, Copy)]
enum From {
    /// The page's own script: `Sec-Fetch-Site: same-origin`.
    Page,
    /// Another site's form or script.
    CrossSite,
    /// A client that sends no fetch metadata, with this `Origin`.
    Origin(&'static str),
    /// No fetch metadata and no `Origin`.
    Nowhere,
}

async fn post(f: &Fixture, path: &str, from: From, body: &Value) -> (u16, Value) {
    let http = reqwest::Client::new();
    let mut req = http
        .post(f.url(path))
        .header("content-type", "application/json")
        .body(body.to_string());
    req = match from {
        From::Page => req.header("sec-fetch-site", "same-origin"),
        From::CrossSite => req
            .header("sec-fetch-site", "cross-site")
            .header("origin", "https://evil.example"),
        From::Origin(o) => req.header("origin", o),
        From::Nowhere => req,
    };
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    for h in [
        "content-security-policy",
        "cache-control",
        "referrer-policy",
    ] {
        assert!(
            resp.headers().contains_key(h),
            "{path}: {h} on every answer"
        );
    }
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn open(f: &Fixture, page: &str) -> String {
    let p = get(f, page).await;
    assert_eq!(p.status, 200, "{}", p.text);
    csrf_of(&p.text)
}

/// A link shows the token once (a plain GET issues nothing, forged POSTs do nothing), the old
/// token keeps working until Ashby calls with the new one, and a rotation does the same.
pub async fn the_token_is_shown_once_and_rotation_ends_on_ashby_s_first_call_with_it(f: &Fixture) {
    let (page, _) = invite(f.store().as_ref(), "globex", 7 * DAY).await;
    let globex = TenantId::parse("globex").unwrap();
    let called = f
        .store()
        .account(&globex)
        .await
        .unwrap()
        .unwrap()
        .health
        .last_call;
    if called.is_none() {
        assert_eq!(
            status(f, &page).await["state"],
            "waiting_for_ashby",
            "a key but no call yet"
        );
    }
    // Ashby's refresh.
    assert_eq!(
        f.call("/assessment.list", &f.token, &json!({})).await.0,
        200
    );
    // A mail scanner's GET: the page, with its headers, and nothing issued.
    let p = get(f, &page).await;
    assert_eq!(p.status, 200);
    let csp = p.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(p.headers["cache-control"], "no-store");
    assert_eq!(p.headers["referrer-policy"], "no-referrer");
    assert_eq!(p.headers["x-content-type-options"], "nosniff");
    assert!(p.text.contains("GLOBEX"), "the page names the account");
    let csrf = csrf_of(&p.text);
    let s = status(f, &page).await;
    assert_eq!(s["token_shown"], false, "{s}");
    assert_eq!(s["state"], "connected", "{s}: Globex already works");

    // Forged: from another site, without fetch metadata or origin, from a foreign origin, or
    // from the page without the right anti-forgery token. Nothing is issued.
    let token_path = format!("{page}/token");
    for (from, body) in [
        (From::CrossSite, json!({ "csrf": csrf })),
        (From::Nowhere, json!({ "csrf": csrf })),
        (From::Origin("null"), json!({ "csrf": csrf })),
        (
            From::Origin("https://evil.example"),
            json!({ "csrf": csrf }),
        ),
        (From::Page, json!({ "csrf": "forged" })),
        (From::Page, json!({})),
    ] {
        let (s, b) = post(f, &token_path, from, &body).await;
        assert_eq!(s, 403, "{b}");
        assert_eq!(b["errorInfo"]["code"], "forbidden", "{b}");
    }
    let s = status(f, &page).await;
    assert_eq!(
        s["token_shown"], false,
        "forged requests issued nothing: {s}"
    );

    // Shown once.
    let (s, b) = post(f, &token_path, From::Page, &json!({ "csrf": csrf })).await;
    assert_eq!(s, 200, "{b}");
    let new_token = b["token"].as_str().unwrap().to_owned();
    assert!(new_token.starts_with("ahub_"));
    let (s, b) = post(f, &token_path, From::Page, &json!({ "csrf": csrf })).await;
    assert_eq!(
        (s, b["errorInfo"]["code"].as_str()),
        (409, Some("already_shown"))
    );
    let again = get(f, &page).await;
    assert!(
        !again.text.contains(&new_token),
        "a later visit never shows it"
    );
    assert!(again.text.contains("data-token-state=\"shown\""));

    // The old token works until Ashby calls with the new one; then only the new one does.
    let s = status(f, &page).await;
    assert_eq!(s["rotation_pending"], true, "{s}");
    assert_eq!(
        f.call("/assessment.list", &f.token, &json!({})).await.0,
        200
    );
    assert_eq!(
        f.call("/assessment.list", &new_token, &json!({})).await.0,
        200
    );
    assert_eq!(
        f.call("/assessment.list", &f.token, &json!({})).await.0,
        401,
        "the old token stops once Ashby used the new one"
    );
    assert_eq!(
        f.call("/assessment.list", &new_token, &json!({})).await.0,
        200
    );
    assert_eq!(status(f, &page).await["rotation_pending"], false);

    // "Issue a new token": the same again.
    let rotate = format!("{page}/token/rotate");
    let (s, b) = post(f, &rotate, From::CrossSite, &json!({ "csrf": csrf })).await;
    assert_eq!(s, 403, "{b}");
    let (s, b) = post(f, &rotate, From::Page, &json!({ "csrf": csrf })).await;
    assert_eq!(s, 200, "{b}");
    let third = b["token"].as_str().unwrap().to_owned();
    assert_ne!(third, new_token);
    assert_eq!(
        f.call("/assessment.list", &new_token, &json!({})).await.0,
        200
    );
    assert_eq!(f.call("/assessment.list", &third, &json!({})).await.0, 200);
    assert_eq!(
        f.call("/assessment.list", &new_token, &json!({})).await.0,
        401
    );
    // A new token Ashby never called with is replaced by the next one: it stops working.
    let (s, b) = post(f, &rotate, From::Page, &json!({ "csrf": csrf })).await;
    assert_eq!(s, 200, "{b}");
    let unused = b["token"].as_str().unwrap().to_owned();
    // A token from `Origin` alone (a client without fetch metadata) is accepted from this host.
    let host = f.base_url.trim_end_matches('/').to_owned();
    let origin: &'static str = Box::leak(host.into_boxed_str());
    let (s, b) = post(f, &rotate, From::Origin(origin), &json!({ "csrf": csrf })).await;
    assert_eq!(s, 200, "{b}");
    // Globex keeps a working token for the other tests.
    let fourth = b["token"].as_str().unwrap().to_owned();
    assert_eq!(
        f.call("/assessment.list", &unused, &json!({})).await.0,
        401,
        "the unused replacement was revoked for the next one"
    );
    assert_eq!(f.call("/assessment.list", &third, &json!({})).await.0, 200);
    assert_eq!(f.call("/assessment.list", &fourth, &json!({})).await.0, 200);
    let tokens = f
        .store()
        .tenant_tokens(&TenantId::parse("globex").unwrap())
        .await
        .unwrap();
    assert_eq!(tokens.len(), 1, "only the newest token is left");
    assert!(tokens[0].hash.ct_eq(&TokenHash::of(&fourth.clone().into())));
    // Put Globex's original token back for the tests that follow.
    let store = f.store();
    let id = TenantId::parse("globex").unwrap();
    store
        .add_tenant_token(&id, &TokenHash::of(&f.token.clone().into()))
        .await
        .unwrap();
}

/// A customer connects a new account: the token, Ashby's call, then the key, checked with
/// `apiKey.info` answer by answer; only keys that can write results are stored.
pub async fn a_new_account_connects_and_each_api_key_info_answer_is_handled(f: &Fixture) {
    let store = f.store();
    let id = TenantId::parse("umbrella").unwrap();
    let tenant = Tenant {
        id: id.clone(),
        name: "Umbrella".into(),
        ats: Ats::Ashby,
        ashby_base_url: f.other_ashby.base_url.parse().unwrap(),
        packages: vec![],
        disabled: false,
    };
    store.create_tenant_awaiting(&tenant).await.unwrap();
    let (page, _) = invite(store.as_ref(), "umbrella", DAY).await;
    let csrf = open(f, &page).await;
    assert_eq!(status(f, &page).await["state"], "waiting_for_ashby");
    let (s, b) = post(
        f,
        &format!("{page}/token"),
        From::Page,
        &json!({ "csrf": csrf }),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let token = b["token"].as_str().unwrap().to_owned();
    assert_eq!(
        status(f, &page).await["rotation_pending"],
        false,
        "a first token replaces nothing"
    );
    assert_eq!(f.call("/assessment.list", &token, &json!({})).await.0, 200);
    let s = status(f, &page).await;
    assert_eq!(s["state"], "waiting_for_key", "{s}");
    assert_eq!(s["title"], "Waiting for your Ashby API key");

    let key_path = format!("{page}/ashby-key");
    let ashby = &f.other_ashby;
    let good = ashby.api_key().to_owned();
    let save = |key: &str| {
        let body = json!({ "csrf": csrf, "api_key": key });
        let path = key_path.clone();
        async move { post(f, &path, From::Page, &body).await }
    };
    // A forged save calls nobody.
    let before = ashby.key_checks();
    let (s, _) = post(
        f,
        &key_path,
        From::CrossSite,
        &json!({ "csrf": csrf, "api_key": good }),
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(
        ashby.key_checks(),
        before,
        "no call to Ashby for a forged POST"
    );
    for bad in ["", "   ", "two words"] {
        let (s, b) = save(bad).await;
        assert_eq!(
            (s, b["errorInfo"]["code"].as_str()),
            (400, Some("invalid_key")),
            "{b}"
        );
    }
    assert_eq!(
        ashby.key_checks(),
        before,
        "nor for one that cannot be a key"
    );

    for (mode, key, want_status, outcome) in [
        (KeyInfoMode::Valid, "not-the-key", 422, "refused"),
        (KeyInfoMode::Unauthorized, good.as_str(), 422, "refused"),
        (
            KeyInfoMode::WithoutCandidatesWrite,
            good.as_str(),
            422,
            "missing_permission",
        ),
        (KeyInfoMode::Down, good.as_str(), 503, "unreachable"),
    ] {
        ashby.set_key_info(mode);
        let (s, b) = save(key).await;
        assert_eq!(
            (s, b["outcome"].as_str()),
            (want_status, Some(outcome)),
            "{mode:?}: {b}"
        );
        assert_eq!(b["stored"], false);
        assert!(!b["message"].as_str().unwrap().is_empty());
        if outcome == "missing_permission" {
            assert!(b["message"].as_str().unwrap().contains("Candidates: Write"));
        }
        let s = status(f, &page).await;
        assert_eq!(
            s["state"], "waiting_for_key",
            "{mode:?}: nothing stored: {s}"
        );
    }
    // Works, but may not read its scopes: stored, with a warning.
    ashby.set_key_info(KeyInfoMode::CannotReadScopes);
    let (s, b) = save(&good).await;
    assert_eq!(
        (s, b["outcome"].as_str()),
        (200, Some("stored_unverified")),
        "{b}"
    );
    assert!(b["message"].as_str().unwrap().contains("Candidates: Write"));
    // The real thing: stored and shown by its title and last four characters only.
    ashby.set_key_info(KeyInfoMode::Valid);
    let (s, b) = save(&good).await;
    assert_eq!((s, b["outcome"].as_str()), (200, Some("stored")), "{b}");
    let label = b["key_label"].as_str().unwrap();
    assert_eq!(
        label,
        format!("Hub integration …{}", &good[good.len() - 4..])
    );
    assert!(!b.to_string().contains(&good), "the key is never echoed");
    let s = status(f, &page).await;
    assert_eq!(s["state"], "connected", "{s}");
    assert_eq!(s["key_label"], label);
    let page_html = get(f, &page).await.text;
    assert!(!page_html.contains(&good) && !page_html.contains(&token));
    let account = store.account(&id).await.unwrap().unwrap();
    let check = account.health.key.expect("the key check is kept");
    assert!(check.scopes_verified);
    assert_eq!(
        account.health.last_call.expect("the call is kept").route,
        "/assessment.list"
    );
    ashby.set_key_info(KeyInfoMode::Valid);
}

/// Unknown, expired and revoked links and disabled accounts reveal nothing and change nothing;
/// too many failures on a link lock it for a while.
pub async fn dead_links_answer_404_or_410_and_failures_are_limited(f: &Fixture) {
    let store = f.store();
    for path in [
        format!("/connect/{}", generate_connect_code().expose_secret()),
        "/connect/short".to_owned(),
        "/connect/a/b/c".to_owned(),
    ] {
        let p = get(f, &path).await;
        assert_eq!(p.status, 404, "{path}");
        assert!(
            p.text.contains("<html") && !p.text.contains("GLOBEX"),
            "{path}"
        );
        assert!(p.headers.contains_key("content-security-policy"));
    }
    let (expired, _) = invite_expiring(store.as_ref(), "initech", now() - DAY).await;
    let (revoked, inv) = invite(store.as_ref(), "initech", DAY).await;
    assert_eq!(
        store
            .revoke_invite(&inv.tenant_id, &inv.id(), now())
            .await
            .unwrap(),
        hub::ports::RegistryOutcome::Done
    );
    for path in [&expired, &revoked] {
        let p = get(f, path).await;
        assert_eq!(p.status, 410, "{path}");
        assert!(!p.text.contains("INITECH"), "a dead link names nobody");
        let (s, b) = post(f, &format!("{path}/token"), From::Page, &json!({})).await;
        assert_eq!(s, 410, "{b}");
        assert_eq!(get(f, &format!("{path}/status")).await.status, 410);
    }
    // A disabled account's links stop working, and work again when it is enabled.
    let (live, _) = invite(store.as_ref(), "initech", DAY).await;
    let initech = TenantId::parse("initech").unwrap();
    store
        .update_tenant(&initech, &|t| t.disabled = true)
        .await
        .unwrap();
    assert_eq!(get(f, &live).await.status, 410);
    store
        .update_tenant(&initech, &|t| t.disabled = false)
        .await
        .unwrap();
    let csrf = open(f, &live).await;

    // Ten forged POSTs on one link: then even the page's own request is refused for a while.
    for _ in 0..hub::usecases::connect::MAX_FAILURES_PER_LINK {
        let (s, _) = post(
            f,
            &format!("{live}/token"),
            From::Page,
            &json!({"csrf": "x"}),
        )
        .await;
        assert_eq!(s, 403);
    }
    let (s, b) = post(
        f,
        &format!("{live}/token"),
        From::Page,
        &json!({ "csrf": csrf }),
    )
    .await;
    assert_eq!(
        (s, b["errorInfo"]["code"].as_str()),
        (429, Some("too_many_attempts")),
        "{b}"
    );
    assert_eq!(get(f, &live).await.status, 429);
    let hash = TokenHash::of(&live["/connect/".len()..].to_owned().into());
    assert!(
        store
            .invite(&hash)
            .await
            .unwrap()
            .unwrap()
            .token_shown_at_ms
            .is_none(),
        "the limited request issued nothing"
    );
}

/// A 401 from Ashby on a delivery marks the tenant as needing attention until a delivery
/// succeeds; the page says so in words.
pub async fn a_refused_key_on_delivery_marks_the_tenant_until_a_delivery_succeeds(f: &Fixture) {
    let store = f.store();
    let (page, _) = invite(store.as_ref(), "globex", DAY).await;
    let id = f.start_ok().await;
    f.ashby.set_mode(AshbyMode::Unauthorized);
    let (s, _) = f
        .vendor
        .callback(
            &f.callback_url("acme"),
            "wh-health-1",
            &json!({"assessment_id": id, "status": "in_progress"}),
        )
        .await;
    assert_eq!(s, 200);
    let globex = TenantId::parse("globex").unwrap();
    let h = store.account(&globex).await.unwrap().unwrap().health;
    let d = h.last_delivery.expect("the refused delivery is recorded");
    assert_eq!(d.outcome, DeliveryHealth::Refused, "{d:?}");
    assert!(d.detail.contains("401"), "{d:?}");
    let s = status(f, &page).await;
    assert_eq!(s["state"], "needs_attention", "{s}");
    assert!(
        s["detail"]
            .as_str()
            .unwrap()
            .contains("Ashby refused the key"),
        "{s}"
    );

    // The customer saves a working key on the page: the parked update is released, due once
    // the functions' cached copies of the old key have expired (1 s in the tests), and its
    // delivery clears the mark. Nobody runs `hubctl deliveries redeliver`.
    let aid = hub::domain::AssessmentId::parse(&id).unwrap();
    let parked: Vec<_> = store
        .deliveries(aid)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| matches!(d.state, hub::domain::DeliveryState::Parked(_)))
        .collect();
    assert_eq!(parked.len(), 1, "{parked:?}");
    // Every parked delivery of the tenant's is released (earlier scenarios may have left some).
    let mut of_globex = 0;
    for d in store.stuck_deliveries(100).await.unwrap() {
        let a = store.assessment(d.assessment_id).await.unwrap().unwrap();
        if a.tenant_id == globex && matches!(d.state, hub::domain::DeliveryState::Parked(_)) {
            of_globex += 1;
        }
    }
    f.ashby.set_mode(AshbyMode::Accept);
    f.ashby.set_key_info(KeyInfoMode::Valid);
    let csrf = open(f, &page).await;
    let saved_at = now();
    let (s, b) = post(
        f,
        &format!("{page}/ashby-key"),
        From::Page,
        &json!({ "csrf": csrf, "api_key": f.ashby.api_key() }),
    )
    .await;
    assert_eq!((s, b["outcome"].as_str()), (200, Some("stored")), "{b}");
    assert_eq!(b["resent"], of_globex, "{b}");
    let said = if of_globex == 1 {
        "One result that could not reach Ashby before goes there within 2 minute(s)".to_owned()
    } else {
        format!("{of_globex} results that could not reach Ashby before go there within 2 minute(s)")
    };
    assert!(b["message"].as_str().unwrap().contains(&said), "{b}");
    let released = store
        .deliveries(aid)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.seq == parked[0].seq)
        .unwrap();
    assert_eq!(released.state, hub::domain::DeliveryState::Pending);
    assert!(
        released.next_attempt_ms >= saved_at + Duration::from_millis(900),
        "due only once the old key's cached copies expired: {released:?}"
    );
    let mut cleared = false;
    for _ in 0..60 {
        f.tick().await;
        let h = store.account(&globex).await.unwrap().unwrap().health;
        if h.last_delivery.as_ref().map(|d| d.outcome) == Some(DeliveryHealth::Delivered) {
            cleared = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(cleared, "a delivered update clears it");
    assert_eq!(status(f, &page).await["state"], "connected");
}

async fn all(f: &Fixture) {
    the_token_is_shown_once_and_rotation_ends_on_ashby_s_first_call_with_it(f).await;
    a_new_account_connects_and_each_api_key_info_answer_is_handled(f).await;
    a_refused_key_on_delivery_marks_the_tenant_until_a_delivery_succeeds(f).await;
    dead_links_answer_404_or_410_and_failures_are_limited(f).await;
}

#[tokio::test]
async fn local_connect_page_routes_tokens_keys_limits_and_health() {
    let f = Fixture::local().await;
    all(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn lambda_connect_page_routes_tokens_keys_limits_and_health() {
    let f = Fixture::lambda(1).await;
    all(&f).await;
    let logs = f.logs().join("\n");
    assert!(!logs.contains("ahub_"), "no trigger token in any log line");
    assert!(
        !logs.contains(f.other_ashby.api_key()),
        "no key in any log line"
    );
    // The fixture runs the functions at RUST_LOG=trace, where the Lambda runtime logs each raw
    // event (the path with it); the template keeps it at info, as it keeps the SDK's bodies out.
    for line in f.logs() {
        if line.contains("raw JSON event received from Lambda") {
            continue;
        }
        assert!(
            !line.contains("/connect/"),
            "no connect code in a log line: {line}"
        );
    }
    f.stop().await;
}
