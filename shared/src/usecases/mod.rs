//! The use cases: one module per thing the hub does, each a function over the ports held by
//! `App` (the store, the ATS and vendor gateways, the clock). They are the only place that
//! decides a state change; the lifecycle (`domain::lifecycle`) says what a change is and what it
//! owes, and the handlers only parse, call one use case and answer.
//!
//! - `start`: a recruiter starts an assessment (record it with its order, try the order).
//! - `cancel`: the ATS cancels one (record it with the vendor cancel it owes, try that).
//! - `callback`: a vendor reports progress or a result (record it with the update it owes).
//! - `order`: the vendor's answer to an order settles it, or the hub gives up on it.
//! - `deliver`: the delivery queue's transport, which asks `order` for the state change.
//! - `catalogue`: the tenant's enabled assessment types, and who is calling.
//! - `pull`: what an ATS that pulls results reads, and its reports of unusable replies.
//! - `health`: what the hub records of a tenant's connection as it works.
//! - `connect`: the customer's connect page (the trigger token, the Ashby API key, the status).

pub mod callback;
pub mod cancel;
pub mod catalogue;
pub mod connect;
pub mod deliver;
pub mod health;
pub mod order;
pub mod pull;
pub mod start;

use crate::app::App;
use crate::clock::Timestamp;
use crate::domain::{
    Assessment, AssessmentId, Ats, DeliveryKind, NewDelivery, Notice, Status, Transition,
};
use crate::ports::{Change, ChangeOutcome, ChangeWrite, StoreError, StoreResult, WebhookMarker};
use crate::retry::CONFLICT;

/// What a use case makes of an assessment as it stands: a transition, with the vendor messages
/// it owes on top of the ATS notice the transition carries; or nothing to change.
pub(crate) type Decision = Option<(Transition, Vec<NewDelivery>)>;

/// What [`record`] did.
#[derive(Debug)]
pub(crate) struct Recorded {
    /// `Applied`, or `Duplicate` (the marker's message was processed before).
    pub outcome: ChangeOutcome,
    /// Where the assessment moved, if it did.
    pub moved: Option<Status>,
    /// The snapshot the write was decided on (ids never change; use it to flush).
    pub assessment: Assessment,
}

/// Writes what `decide` makes of the assessment, atomically with the marker and the settling of
/// delivery `settle`. A concurrent change that wins the race makes it re-read and decide again
/// (`retry::CONFLICT`); a delivery to settle that someone else settled meanwhile ends it (that
/// one decided). `None` if the assessment does not exist (or vanished).
pub(crate) async fn record(
    app: &App,
    id: AssessmentId,
    mut current: Option<Assessment>,
    marker: Option<&WebhookMarker>,
    settle: Option<u64>,
    decide: impl Fn(&Assessment) -> StoreResult<Decision>,
) -> StoreResult<Option<Recorded>> {
    for try_no in 0..CONFLICT.tries {
        if try_no > 0 {
            CONFLICT.wait(try_no).await;
        }
        let a = match current.take() {
            Some(a) => a,
            None => match app.store.assessment(id).await? {
                Some(a) => a,
                None => return Ok(None),
            },
        };
        let decision = decide(&a)?;
        if decision.is_none() && marker.is_none() && settle.is_none() {
            // Nothing to write (a cancel of a finished assessment, say): no store call.
            return Ok(Some(Recorded {
                outcome: ChangeOutcome::Applied,
                moved: None,
                assessment: a,
            }));
        }
        let moved = decision.as_ref().map(|(t, _)| t.status);
        let change = decision
            .map(|(t, vendor_messages)| change(app, &a, &t, vendor_messages))
            .transpose()?;
        let write = ChangeWrite {
            assessment_id: id,
            marker: marker.cloned(),
            change,
            settle,
        };
        match app.store.apply(&write).await? {
            ChangeOutcome::Conflict => {
                if let Some(seq) = settle
                    && !app
                        .store
                        .open_deliveries(id)
                        .await?
                        .iter()
                        .any(|d| d.seq == seq)
                {
                    return Ok(Some(Recorded {
                        outcome: ChangeOutcome::Duplicate,
                        moved: None,
                        assessment: a,
                    }));
                }
            }
            outcome => {
                return Ok(Some(Recorded {
                    outcome,
                    moved: if outcome == ChangeOutcome::Applied {
                        moved
                    } else {
                        None
                    },
                    assessment: a,
                }));
            }
        }
    }
    Err(StoreError::Unavailable(format!(
        "assessment still contended after {} tries",
        CONFLICT.tries
    )))
}

/// The one place a `Change` is built: the transition applied to this version of the assessment,
/// with the ATS notice it owes (timestamped strictly after the last one) and the vendor
/// messages.
fn change(
    app: &App,
    a: &Assessment,
    t: &Transition,
    vendor_messages: Vec<NewDelivery>,
) -> StoreResult<Change> {
    let now = app.clock.now();
    let mut deliveries = vendor_messages;
    let mut update_ms = None;
    // A move to a final state leaves what an ATS that pulls results reads (the move happens once:
    // final states are final).
    let summary = if a.status.is_terminal() {
        None
    } else {
        crate::domain::summary(t)
    };
    match a.ats {
        Ats::Ashby => {
            if let Some(notice) = &t.notice {
                let at = now.max(a.last_update_ms.next());
                deliveries.push(notice_delivery(app, a.id, at, notice, now)?);
                update_ms = Some(at);
            }
        }
        // Greenhouse shows no progress: it is told once, of the final state, and reads it by
        // `test_status`. Not of a cancel it asked for (it has none) or of a refusal at start
        // either way: a refusal is a final state it must read.
        Ats::Greenhouse => {
            if summary.is_some()
                && let Some(url) = &a.ats_url
            {
                deliveries.push(NewDelivery {
                    kind: DeliveryKind::AtsPatch,
                    body: serde_json::to_string(&crate::ats::greenhouse::PatchBody {
                        url: url.clone(),
                    })
                    .map_err(|e| StoreError::Corrupt(format!("serialising a PATCH: {e}")))?,
                    next_attempt_ms: now,
                    leased_until_ms: Timestamp::EPOCH,
                    expires_at_s: None,
                });
            }
        }
    }
    Ok(Change {
        expected_version: a.version,
        expected_update_seq: a.update_seq,
        status: t.status,
        status_label: t.label.clone(),
        rejection_message: t.rejection.clone(),
        vendor_reference: t.reference.clone(),
        now_ms: now,
        deliveries,
        update_ms,
        summary,
        ats_error: None,
    })
}

/// A new delivery of `notice` to the ATS, due now.
fn notice_delivery(
    app: &App,
    id: AssessmentId,
    at: Timestamp,
    notice: &Notice,
    now: Timestamp,
) -> StoreResult<NewDelivery> {
    Ok(NewDelivery {
        kind: DeliveryKind::AtsUpdate,
        body: app
            .ats
            .notice_body(id, at, notice)
            .map_err(|e| StoreError::Corrupt(format!("serialising an ATS update: {e}")))?,
        next_attempt_ms: now,
        leased_until_ms: Timestamp::EPOCH,
        expires_at_s: None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use async_trait::async_trait;
    use http::HeaderMap;

    use super::deliver::run_due;
    use super::start::{Started, start};
    use crate::app::App;
    use crate::ats::{AtsError, AtsGateway};
    use crate::clock::{ManualClock, Timestamp};
    use crate::config::Config;
    use crate::domain::{
        AssessmentId, Candidate, Job, Notice, OptionValues, Order, Package, PackageId, PackageRef,
        Status, Tenant, TenantId, TokenHash, Vendor, VendorId, labels,
    };
    use crate::ports::{Assessments, RegistryAdmin};
    use crate::retry::Backoff;
    use crate::store::MemoryStore;
    use crate::vendors::VerifiedCallback;
    use crate::vendors::{CallbackError, Message, VendorError, VendorGateway, VendorReply};

    /// A vendor that never answers.
    struct Unreachable;

    #[async_trait]
    impl VendorGateway for Unreachable {
        fn order_body(
            &self,
            id: AssessmentId,
            _: &PackageId,
            _: &Order,
            _: &OptionValues,
            _: &str,
        ) -> Result<String, serde_json::Error> {
            serde_json::to_string(&id)
        }
        fn cancel_body(&self, id: AssessmentId) -> Result<String, serde_json::Error> {
            serde_json::to_string(&id)
        }
        async fn send(
            &self,
            _: &Vendor,
            _: Message,
            _: AssessmentId,
            _: &str,
            _: Backoff,
        ) -> Result<VendorReply, VendorError> {
            Err(VendorError::Unavailable {
                attempts: 1,
                last: "timed out".into(),
            })
        }
        async fn receive(
            &self,
            _: &Vendor,
            _: &HeaderMap,
            _: &[u8],
            _: Timestamp,
        ) -> Result<VerifiedCallback, CallbackError> {
            Err(CallbackError::Signature("signature does not match"))
        }
    }

    /// An ATS that takes everything and remembers what it was told.
    #[derive(Default)]
    struct Listening(Mutex<Vec<String>>);

    #[async_trait]
    impl AtsGateway for Listening {
        fn notice_body(
            &self,
            _: AssessmentId,
            _: Timestamp,
            notice: &Notice,
        ) -> Result<String, serde_json::Error> {
            serde_json::to_string(&format!("{notice:?}"))
        }
        async fn send(&self, _: &Tenant, body: &str) -> Result<(), AtsError> {
            self.0.lock().expect("lock").push(body.to_owned());
            Ok(())
        }
    }

    fn order(package: &PackageRef) -> Order {
        Order {
            ats: crate::domain::Ats::Ashby,
            assessment_type_id: package.type_id(),
            candidate: Candidate {
                first_name: "Ada".into(),
                last_name: "Lovelace".into(),
                email: "ada@example.com".into(),
            },
            start_key: "app-1".into(),
            application_id: Some("app-1".into()),
            job: Some(Job {
                id: "job-1".into(),
                name: "Engineer".into(),
                req_id: None,
            }),
            ats_url: None,
            candidate_id: Some("cand-1".into()),
            additional_fields: Default::default(),
        }
    }

    #[tokio::test]
    async fn an_order_the_vendor_never_takes_fails_at_the_maximum_age_and_the_ats_hears_it() {
        let clock = Arc::new(ManualClock::at(Timestamp::from_ms(1_700_000_000_000)));
        let store = Arc::new(MemoryStore::with_clock(clock.clone()));
        let package = PackageRef::parse("acme/basic").expect("ref");
        let tenant = Tenant {
            id: TenantId::parse("globex").expect("id"),
            name: "Globex".into(),
            ats: crate::domain::Ats::Ashby,
            ashby_base_url: url::Url::parse("https://api.ashbyhq.com").expect("url"),
            packages: vec![package.clone()],
            disabled: false,
        };
        let vendor = Vendor {
            id: VendorId::parse("acme").expect("id"),
            name: "Acme".into(),
            order_url: url::Url::parse("https://acme.example/orders").expect("url"),
            packages: vec![Package {
                id: package.package.clone(),
                name: "Basic".into(),
                description: String::new(),
                options: vec![],
            }],
        };
        let token = TokenHash::of(&secrecy::SecretString::from("tok"));
        store.put_tenant(&tenant, &token).await.expect("tenant");
        store.put_vendor(&vendor).await.expect("vendor");
        let ats = Arc::new(Listening::default());
        let config = Config::default();
        let max_age = config.delivery_max_age;
        let app = App::from_ports(
            config,
            store.clone(),
            ats.clone(),
            Arc::new(Unreachable),
            clock.clone(),
        );

        let Started::Live { id, label, .. } =
            start(&app, &tenant, &order(&package), "https://hub.example")
                .await
                .expect("start")
        else {
            panic!("a start the vendor cannot take yet is queued");
        };
        assert_eq!(label, labels::QUEUED);

        // Just short of the maximum age, the queue retries and the order is still owed.
        clock.advance(max_age - Duration::from_secs(60));
        run_due(&app, 10, Duration::from_secs(30))
            .await
            .expect("run");
        let a = store.assessment(id).await.expect("read").expect("exists");
        assert_eq!(a.status, Status::Ordering);
        assert!(ats.0.lock().expect("lock").is_empty());

        // Past it, the order is dead, the assessment failed, and the next run tells the ATS.
        clock.advance(Duration::from_secs(2 * 3_600));
        run_due(&app, 10, Duration::from_secs(30))
            .await
            .expect("run");
        run_due(&app, 10, Duration::from_secs(30))
            .await
            .expect("run");
        let a = store.assessment(id).await.expect("read").expect("exists");
        assert_eq!(a.status, Status::Failed);
        let told = ats.0.lock().expect("lock").clone();
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(told[0].contains(labels::UNREACHABLE_REASON), "{told:?}");
    }
}
