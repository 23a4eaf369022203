//! The template against the code: each function's IAM policy in `template.yaml` must grant exactly
//! the AWS actions that function's compiled binary calls. Every function gets its own recording
//! proxy in front of moto (its own `AWS_ENDPOINT_URL`), a full lifecycle runs through the gateway,
//! and each recorded call is turned into the IAM action and resource it needs. An action the code
//! calls but the template does not grant would fail in AWS with AccessDenied; an action granted
//! but never called is privilege nobody needs. Both fail this test, naming the function.
//! DynamoDB's own calls to KMS do not pass the proxy: a table call is taken to need
//! `kms:Decrypt` on the table's customer-managed key too, which the template grants only when
//! `TableKmsKeyArn` is set (the test reads that conditional statement as granted).
//!
//! Also checked here, from the template alone: every function's build and logging conventions,
//! its alarms, and that the alarms on the hub's own metrics read names the code emits.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;

use hub_tests::aws_proxy::{AwsCall, AwsProxy};
use serde_norway::Value as Yaml;

use crate::helpers::{Fixture, Host};
use crate::scenarios as sc;

/// What a statement's `Resource` names, in the template's own terms.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Resource {
    /// `!GetAtt Table.Arn`
    Table,
    /// `!Sub "${Table.Arn}/index/*"`
    TableIndexes,
    /// `!Sub "arn:${AWS::Partition}:secretsmanager:...:secret:${SecretPrefix}*"`
    HubSecrets,
    /// `!Sub "arn:...:secret:${SecretPrefix}tenants/*/ashby-api-key-*"`: tenants' Ashby API keys
    /// (the connect page writes them; Secrets Manager appends `-` and six characters).
    TenantAshbyKeys,
    /// `!Ref TableKmsKeyArn`, the table's customer-managed key when one is set.
    TableKey,
    /// Anything else; never expected.
    Other(String),
}

type Grants = BTreeSet<(String, Resource)>;

struct Function {
    /// The template's logical id, e.g. `StartAssessmentFunction`.
    logical_id: String,
    /// `Metadata.BuildProperties.Binary`, the workspace binary, e.g. `start-assessment`.
    binary: String,
    properties: Yaml,
    grants: Grants,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn template() -> Yaml {
    let path = repo_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn resources(t: &Yaml) -> Vec<(String, &Yaml)> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .map(|(k, v)| (k.as_str().expect("logical id").to_owned(), v))
        .collect()
}

/// `!Tag value` → ("!Tag", value).
fn tagged(v: &Yaml) -> Option<(String, &Yaml)> {
    match v {
        Yaml::Tagged(t) => Some((t.tag.to_string(), &t.value)),
        _ => None,
    }
}

fn one_or_many(v: &Yaml) -> Vec<&Yaml> {
    match v {
        Yaml::Sequence(items) => items.iter().collect(),
        other => vec![other],
    }
}

fn classify(resource: &Yaml) -> Resource {
    match tagged(resource) {
        Some((tag, v)) if tag == "!GetAtt" && v.as_str() == Some("Table.Arn") => Resource::Table,
        Some((tag, v)) if tag == "!Ref" && v.as_str() == Some("TableKmsKeyArn") => {
            Resource::TableKey
        }
        Some((tag, v)) if tag == "!Sub" => match v.as_str() {
            Some("${Table.Arn}/index/*") => Resource::TableIndexes,
            Some(
                "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${SecretPrefix}*",
            ) => Resource::HubSecrets,
            Some(
                "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${SecretPrefix}tenants/*/ashby-api-key-*",
            ) => Resource::TenantAshbyKeys,
            _ => Resource::Other(format!("{resource:?}")),
        },
        _ => Resource::Other(format!("{resource:?}")),
    }
}

/// A statement, or the statement an `!If [UseTableKey, <statement>, !Ref AWS::NoValue]` adds when
/// the table has a customer-managed key.
fn statement<'a>(logical_id: &str, s: &'a Yaml) -> &'a Yaml {
    match tagged(s) {
        None => s,
        Some((tag, v)) if tag == "!If" => {
            let [condition, then, otherwise] =
                v.as_sequence().map(Vec::as_slice).unwrap_or_default()
            else {
                panic!("{logical_id}: !If takes [condition, then, else]: {s:?}")
            };
            assert_eq!(
                (condition.as_str(), reference(otherwise)),
                (Some("UseTableKey"), Some("AWS::NoValue")),
                "{logical_id}: a conditional statement is only understood as \
                 !If [UseTableKey, <statement>, !Ref AWS::NoValue]"
            );
            then
        }
        Some(_) => panic!("{logical_id}: unsupported statement {s:?}"),
    }
}

/// The (action, resource) pairs a function's inline policies allow. Only inline statements with
/// `Effect: Allow`, `Action` and `Resource` are understood; anything else fails loudly, since this
/// test could not vouch for it.
fn grants(logical_id: &str, properties: &Yaml) -> Grants {
    let mut out = Grants::new();
    for policy in properties["Policies"].as_sequence().into_iter().flatten() {
        let statements = policy["Statement"].as_sequence().unwrap_or_else(|| {
            panic!("{logical_id}: only inline policy documents are supported here, not {policy:?}")
        });
        for s in statements.iter().map(|s| statement(logical_id, s)) {
            assert_eq!(
                s["Effect"].as_str(),
                Some("Allow"),
                "{logical_id}: only Allow statements are supported: {s:?}"
            );
            for action in one_or_many(&s["Action"]) {
                let action = action
                    .as_str()
                    .unwrap_or_else(|| panic!("{logical_id}: Action must be strings: {s:?}"));
                // The functions may use the table's key only as DynamoDB's caller.
                if action.starts_with("kms:") {
                    let via = &s["Condition"]["StringEquals"]["kms:ViaService"];
                    assert_eq!(
                        tagged(via).map(|(tag, v)| (tag, v.as_str())),
                        Some((
                            "!Sub".to_owned(),
                            Some("dynamodb.${AWS::Region}.${AWS::URLSuffix}")
                        )),
                        "{logical_id}: {action} must be limited to kms:ViaService DynamoDB: {s:?}"
                    );
                }
                for resource in one_or_many(&s["Resource"]) {
                    out.insert((action.to_owned(), classify(resource)));
                }
            }
        }
    }
    out
}

fn functions(t: &Yaml) -> Vec<Function> {
    resources(t)
        .into_iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(logical_id, r)| {
            let binary = r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_else(|| panic!("{logical_id}: Metadata.BuildProperties.Binary"))
                .to_owned();
            let properties = r["Properties"].clone();
            Function {
                grants: grants(&logical_id, &properties),
                logical_id,
                binary,
                properties,
            }
        })
        .collect()
}

/// The IAM actions and resources one recorded call needs.
fn needs(call: &AwsCall, table: &str, secret_prefix: &str) -> Vec<(String, Resource)> {
    let op = call.operation.as_str();
    if op.starts_with("dynamodb:") {
        let resource = if call.table_names().iter().any(|t| t != table) {
            Resource::Other(format!("tables {:?}", call.table_names()))
        } else if call.index_name().is_some() {
            Resource::TableIndexes
        } else {
            Resource::Table
        };
        // TransactWriteItems and TransactGetItems have no IAM action of their own: each item is
        // authorised as its single-item action on its table.
        let actions: Vec<String> = match op {
            "dynamodb:TransactWriteItems" | "dynamodb:TransactGetItems" => call
                .transact_parts()
                .iter()
                .map(|part| match part.as_str() {
                    "Put" => "dynamodb:PutItem".to_owned(),
                    "Update" => "dynamodb:UpdateItem".to_owned(),
                    "Delete" => "dynamodb:DeleteItem".to_owned(),
                    "ConditionCheck" => "dynamodb:ConditionCheckItem".to_owned(),
                    "Get" => "dynamodb:GetItem".to_owned(),
                    other => format!("dynamodb:<unknown transaction part {other}>"),
                })
                .collect(),
            _ => vec![op.to_owned()],
        };
        let mut needs: Vec<(String, Resource)> =
            actions.into_iter().map(|a| (a, resource.clone())).collect();
        // With a customer-managed table key, DynamoDB decrypts the table key with the caller's
        // permission on every table and index access.
        if matches!(resource, Resource::Table | Resource::TableIndexes) {
            needs.push(("kms:Decrypt".to_owned(), Resource::TableKey));
        }
        needs
    } else if op.starts_with("secretsmanager:") {
        let writes = op != "secretsmanager:GetSecretValue";
        let resource = match call.secret_id() {
            Some(id)
                if writes
                    && id
                        .strip_prefix(secret_prefix)
                        .and_then(|rest| rest.strip_prefix("tenants/"))
                        .and_then(|rest| rest.strip_suffix("/ashby-api-key"))
                        .is_some_and(|tenant| !tenant.is_empty() && !tenant.contains('/')) =>
            {
                Resource::TenantAshbyKeys
            }
            Some(id) if id.starts_with(secret_prefix) => Resource::HubSecrets,
            other => Resource::Other(format!("secret {other:?}")),
        };
        vec![(op.to_owned(), resource)]
    } else {
        vec![(
            op.to_owned(),
            Resource::Other("a service the hub does not use".into()),
        )]
    }
}

#[tokio::test]
async fn each_function_is_granted_exactly_the_aws_actions_its_code_calls() {
    let functions = functions(&template());
    let upstream = hub_tests::aws::endpoint();
    let mut proxies = BTreeMap::new();
    for f in &functions {
        proxies.insert(f.binary.clone(), AwsProxy::start(&upstream).await);
    }
    // Functions the fixture runs that the template does not declare share this one.
    let stray = AwsProxy::start(&upstream).await;
    let strays = Mutex::new(Vec::new());
    let f = Fixture::lambda_with(1, |binary| {
        let url = match proxies.get(binary) {
            Some(p) => p.url(),
            None => {
                strays.lock().unwrap().push(binary.to_owned());
                stray.url()
            }
        };
        vec![("AWS_ENDPOINT_URL".to_owned(), url.to_owned())]
    })
    .await;
    let Host::Lambda(host) = &f.host else {
        unreachable!("Fixture::lambda_with runs the Lambda host")
    };
    let table = host.env_var("HUB_TABLE").unwrap().to_owned();
    let prefix = host.env_var("HUB_SECRET_PREFIX").unwrap().to_owned();

    // The happy path, then the outages: they take the retry paths, through the scheduled
    // deliver-updates function too, which a policy must cover as well.
    sc::list_shows_the_enabled_packages(&f).await;
    sc::a_full_lifecycle_reaches_ashby_exactly_as_specified(&f).await;
    sc::cancel_stops_the_check_once_and_only_for_its_tenant(&f).await;
    sc::a_vendor_outage_queues_the_order_and_places_it_once_on_recovery(&f).await;
    sc::a_queued_order_the_vendor_refuses_is_reported_to_ashby(&f).await;
    sc::an_ashby_outage_loses_and_doubles_nothing(&f).await;
    sc::a_refused_ashby_key_parks_deliveries_until_they_are_redelivered(&f).await;
    sc::a_cancel_during_a_vendor_outage_reaches_the_vendor_later(&f).await;
    // Greenhouse's routes run on the same functions: their calls must be granted too, and
    // nothing more.
    crate::greenhouse::a_greenhouse_test_runs_from_list_to_complete_with_one_patch(&f).await;
    crate::greenhouse::a_response_error_is_recorded_against_its_test(&f).await;
    // The connect page: its function, and the rotation it ends on the list function.
    crate::connect::the_token_is_shown_once_and_rotation_ends_on_ashby_s_first_call_with_it(&f)
        .await;
    crate::connect::a_new_account_connects_and_each_api_key_info_answer_is_handled(&f).await;
    // A key saved there releases the tenant's parked updates (a Query on the stuck index).
    crate::connect::a_refused_key_on_delivery_marks_the_tenant_until_a_delivery_succeeds(&f).await;
    f.stop().await;

    let mut problems = Vec::new();
    let strays = strays.into_inner().unwrap();
    let stray_operations: BTreeSet<String> = stray.operations().into_iter().collect();
    if !stray_operations.is_empty() {
        problems.push(format!(
            "{strays:?} called {stray_operations:?} but has no AWS::Serverless::Function in \
             template.yaml"
        ));
    }
    for f in &functions {
        let calls = proxies[&f.binary].calls();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for c in &calls {
            *counts.entry(c.operation.as_str()).or_default() += 1;
        }
        println!("{} ({}): {counts:?}", f.logical_id, f.binary);
        if calls.is_empty() {
            problems.push(format!(
                "{}: made no AWS call during the lifecycle, so its policy is unchecked; make \
                 this test exercise it",
                f.logical_id
            ));
            continue;
        }
        let used: Grants = calls
            .iter()
            .flat_map(|c| needs(c, &table, &prefix))
            .collect();
        for (action, resource) in used.difference(&f.grants) {
            problems.push(format!(
                "{}: its code calls {action} on {resource:?}, which template.yaml does not grant",
                f.logical_id
            ));
        }
        for (action, resource) in f.grants.difference(&used) {
            problems.push(format!(
                "{}: template.yaml grants {action} on {resource:?}, which its code never called",
                f.logical_id
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "template.yaml and the code disagree:\n  {}",
        problems.join("\n  ")
    );
}

/// The logical id of the resource a `!Ref` names.
fn reference(v: &Yaml) -> Option<&str> {
    match tagged(v) {
        Some((tag, v)) if tag == "!Ref" => v.as_str(),
        _ => None,
    }
}

#[test]
fn every_function_crate_is_deployed_as_an_arm64_function_with_json_logs_and_alarms() {
    let t = template();
    let all = resources(&t);
    let by_id: BTreeMap<&str, &Yaml> = all.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let functions = functions(&t);
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Architectures"][0].as_str(), Some("arm64"));

    let crates: BTreeSet<String> = std::fs::read_dir(repo_root().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let deployed: BTreeSet<String> = functions.iter().map(|f| f.binary.clone()).collect();
    assert_eq!(
        crates, deployed,
        "every crate under functions/ is one AWS::Serverless::Function in template.yaml"
    );

    let alarmed: Vec<(String, String)> = all
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .filter(|(_, r)| r["Properties"]["Namespace"].as_str() == Some("AWS/Lambda"))
        .filter_map(|(_, r)| {
            let p = &r["Properties"];
            let dimension = &p["Dimensions"][0];
            (dimension["Name"].as_str() == Some("FunctionName")).then(|| {
                (
                    reference(&dimension["Value"])
                        .unwrap_or_default()
                        .to_owned(),
                    p["MetricName"].as_str().unwrap_or_default().to_owned(),
                )
            })
        })
        .collect();

    for f in &functions {
        let id = &f.logical_id;
        let logging = &f.properties["LoggingConfig"];
        assert_eq!(logging["LogFormat"].as_str(), Some("JSON"), "{id}");
        let group = reference(&logging["LogGroup"])
            .unwrap_or_else(|| panic!("{id}: LoggingConfig.LogGroup is a !Ref to its log group"));
        let group = by_id[group];
        assert_eq!(group["Type"].as_str(), Some("AWS::Logs::LogGroup"), "{id}");
        assert!(
            !group["Properties"]["RetentionInDays"].is_null(),
            "{id}: its log group has a retention"
        );
        for metric in ["Errors", "Throttles"] {
            assert!(
                alarmed.contains(&(id.clone(), metric.to_owned())),
                "{id}: no {metric} alarm"
            );
        }
        assert_eq!(
            by_id[id.as_str()]["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{id}"
        );
    }
}

#[test]
fn alarms_on_hub_metrics_read_names_the_code_emits_without_dimensions() {
    let t = template();
    let mut watched = Vec::new();
    for (id, r) in resources(&t) {
        let p = &r["Properties"];
        if p["Namespace"].as_str() != Some(hub::metrics::NAMESPACE) {
            continue;
        }
        let name = p["MetricName"].as_str().unwrap_or_default();
        assert!(
            hub::metrics::names::ALL.contains(&name),
            "{id} watches {name:?}, which shared/src/metrics.rs does not define"
        );
        assert!(
            p["Dimensions"].is_null(),
            "{id}: the hub emits {name} without dimensions"
        );
        watched.push(name.to_owned());
    }
    watched.sort();
    assert_eq!(
        watched,
        [
            "AshbyDeliveriesDead",
            "AshbyDeliveriesRetried",
            "AshbyFilesDead",
            "AshbyVersionNotActive",
            "GreenhousePatchesDead",
            "GreenhouseResponseErrors",
            "OldestPendingDeliveryAgeSeconds",
            "TenantsNeedingAttention"
        ]
    );
}
