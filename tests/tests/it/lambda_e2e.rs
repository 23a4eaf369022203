//! End to end: the four compiled Lambda binaries under the Runtime API emulator, behind an HTTP
//! API gateway, on DynamoDB and Secrets Manager served by moto, with a fake Ashby and fake
//! vendors on loopback that check signatures and Ashby's schemas.

use crate::helpers::{CANDIDATE_EMAIL, CANDIDATE_FIRST, CANDIDATE_LAST, Fixture, VENDOR_SECRET};
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
    sc::an_oversized_body_is_a_413(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn lambda_vendor_rejection_and_outage() {
    let f = Fixture::lambda(1).await;
    sc::a_vendor_rejection_reaches_the_recruiter_verbatim(&f).await;
    sc::a_vendor_outage_is_a_clear_503_and_a_retried_start_orders_once(&f).await;
    f.stop().await;
}

#[tokio::test]
async fn lambda_callbacks_bad_signature_duplicates_and_ashby_outage() {
    let f = Fixture::lambda(1).await;
    sc::callbacks_are_verified_validated_and_scoped_to_their_vendor(&f).await;
    sc::an_ashby_outage_makes_the_vendor_retry_and_the_update_arrives_once(&f).await;
    f.stop().await;
}
