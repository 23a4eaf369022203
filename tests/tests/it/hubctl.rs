//! The compiled `hubctl` binary against DynamoDB and Secrets Manager on moto, checked the way an
//! operator would notice: a printed token authenticates (the functions' own lookup finds the
//! tenant), a stored key or secret is what the functions read, rotation keeps the old credential
//! working until it is revoked, listings never show a credential, and bad input fails with a
//! sentence and an exit code.

use std::process::Stdio;
use std::time::{SystemTime, UNIX_EPOCH};

use hub::domain::{PackageRef, TenantId, TokenHash};
use hub::ports::Registry;
use hub::secrets::{SecretNames, SecretSource, SecretsManagerSource};
use hub::store::DynamoDbStore;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// One deployment as hubctl sees it: a fresh table and secret prefix on moto, plus the adapters
/// the functions use, to check what hubctl wrote.
struct Deployment {
    table: String,
    prefix: String,
    ddb: aws_sdk_dynamodb::Client,
    store: DynamoDbStore,
    secrets: SecretsManagerSource,
    names: SecretNames,
}

/// What one run of hubctl did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "hubctl failed: {self:?}");
        assert!(self.stderr.is_empty(), "{self:?}");
        self
    }

    /// Expects a failure with `code` and a message on stderr containing `words`.
    fn fails(&self, code: i32, words: &str) {
        assert_eq!(self.code, code, "{self:?}");
        assert!(
            self.stderr.contains(words),
            "stderr should mention {words:?}: {self:?}"
        );
        assert!(self.stdout.is_empty(), "{self:?}");
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }

    fn printed(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl Deployment {
    async fn new() -> Self {
        let (ddb, table) = hub_tests::aws::fresh_table().await;
        let sdk = hub_tests::aws::sdk_config().await;
        let prefix = format!("test-{}/", uuid::Uuid::new_v4().simple());
        Self {
            store: DynamoDbStore::new(ddb.clone(), table.clone()),
            secrets: SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&sdk)),
            names: SecretNames::new(prefix.clone()),
            ddb,
            table,
            prefix,
        }
    }

    /// Runs hubctl with this deployment's table and prefix in the environment.
    async fn hubctl(&self, args: &[&str]) -> Run {
        self.run(args, None, true).await
    }

    async fn hubctl_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        self.run(args, Some(stdin), true).await
    }

    async fn run(&self, args: &[&str], stdin: Option<&str>, with_table: bool) -> Run {
        let binary = hub_tests::lambda::bin_dir().join("hubctl");
        assert!(
            binary.exists(),
            "{} is missing: run `cargo build --bins` (./infra/test.sh does)",
            binary.display()
        );
        let mut cmd = Command::new(binary);
        // Only what an operator's shell would hold, pointed at moto; never a real account.
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_ENDPOINT_URL", hub_tests::aws::endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("HUB_SECRET_PREFIX", &self.prefix)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if with_table {
            cmd.env("HUB_TABLE", &self.table);
        }
        let mut child = cmd.spawn().expect("spawn hubctl");
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).await.unwrap();
        }
        drop(input);
        let out = child.wait_with_output().await.unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    async fn add_acme(&self) -> String {
        let run = self
            .hubctl(&[
                "vendor",
                "add",
                "--id",
                "acme",
                "--name",
                "Acme Checks",
                "--order-url",
                "https://acme.example/hub/orders",
                "--package",
                "criminal-basic:Criminal record check:County and national search",
                "--json",
            ])
            .await
            .ok();
        run.json()["signing_secret"].as_str().unwrap().to_owned()
    }

    /// Creates a tenant; returns its printed token.
    async fn create_tenant(&self, id: &str, extra: &[&str]) -> String {
        let mut args = vec!["tenant", "create", "--id", id, "--name", "Globex", "--json"];
        args.extend_from_slice(extra);
        let run = self.hubctl(&args).await.ok();
        let token = run.json()["trigger_token"].as_str().unwrap().to_owned();
        assert_eq!(
            run.json()["token_hash"].as_str().unwrap(),
            hash(&token).to_hex()
        );
        token
    }

    /// The tenant the functions would find for this token.
    async fn who(&self, token: &str) -> Option<TenantId> {
        self.store
            .tenant_by_token(&hash(token))
            .await
            .unwrap()
            .map(|t| t.id)
    }

    async fn secret(&self, name: &str) -> Vec<String> {
        let v = self.secrets.versions(name).await.unwrap();
        v.all()
            .iter()
            .map(|s| s.expose_secret().to_owned())
            .collect()
    }

    /// Every item in the table, printed, to look for things that must not be stored.
    async fn table_dump(&self) -> String {
        let items = self
            .ddb
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default();
        format!("{items:?}")
    }
}

fn hash(token: &str) -> TokenHash {
    TokenHash::of(&SecretString::from(token.to_owned()))
}

fn tenant(id: &str) -> Option<TenantId> {
    Some(TenantId::parse(id).unwrap())
}

/// A Standard Webhooks callback signed with `secret`, checked the way the callback function
/// checks it: against the vendor's stored secrets.
fn verifies(secret: &str, stored: &[String]) -> bool {
    let body =
        br#"{"assessment_id":"00000000-0000-4000-8000-000000000001","status":"in_progress"}"#;
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let signature = standardwebhooks::Webhook::new(secret)
        .unwrap()
        .sign("msg_1", ts, body)
        .unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert("webhook-id", "msg_1".parse().unwrap());
    headers.insert("webhook-timestamp", ts.to_string().parse().unwrap());
    headers.insert("webhook-signature", signature.parse().unwrap());
    let secrets: Vec<SecretString> = stored
        .iter()
        .map(|s| SecretString::from(s.clone()))
        .collect();
    let now = hub::clock::Clock::now(&hub::clock::SystemClock);
    hub::vendors::verify_signature(&secrets, &headers, body, now).is_ok()
}

#[tokio::test]
async fn a_created_tenant_s_printed_token_authenticates_and_only_its_hash_is_stored() {
    let d = Deployment::new().await;
    d.add_acme().await;
    let token = d
        .create_tenant(
            "globex",
            &[
                "--package",
                "acme/criminal-basic",
                "--base-url",
                "https://hub.example.com",
            ],
        )
        .await;
    assert!(token.starts_with("ahub_"), "{token}");
    let t = d
        .store
        .tenant_by_token(&hash(&token))
        .await
        .unwrap()
        .expect("the printed token authenticates");
    assert_eq!(t.name, "Globex");
    assert_eq!(
        t.packages,
        vec![PackageRef::parse("acme/criminal-basic").unwrap()]
    );
    assert_eq!(t.ashby_base_url.as_str(), "https://api.ashbyhq.com/");
    let dump = d.table_dump().await;
    assert!(!dump.contains(&token), "the token itself is stored");
    assert!(dump.contains(&hash(&token).to_hex()));

    // The human output shows the token once, with the base URL to give Ashby.
    let run = d
        .hubctl(&[
            "tenant",
            "create",
            "--id",
            "initech",
            "--name",
            "Initech",
            "--base-url",
            "https://hub.example.com/",
        ])
        .await
        .ok();
    let printed: Vec<&str> = run
        .stdout
        .split_whitespace()
        .filter(|w| w.starts_with("ahub_"))
        .collect();
    assert_eq!(printed.len(), 1, "{}", run.stdout);
    assert_eq!(d.who(printed[0]).await, tenant("initech"));
    assert!(
        run.stdout.contains("https://hub.example.com\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("set-ashby-key --id initech"));

    // Without a base URL, the operator is told where to find it.
    let run = d
        .hubctl(&["tenant", "create", "--id", "hooli", "--name", "Hooli"])
        .await
        .ok();
    assert!(run.stdout.contains("AshbyBaseUrl"), "{}", run.stdout);

    // Creating it again changes nothing, and the first token keeps working.
    d.hubctl(&["tenant", "create", "--id", "globex", "--name", "Other"])
        .await
        .fails(1, "already exists");
    assert_eq!(d.who(&token).await, tenant("globex"));
}

#[tokio::test]
async fn the_ashby_key_is_read_from_stdin_stored_for_the_functions_and_never_echoed() {
    let d = Deployment::new().await;
    d.create_tenant("globex", &[]).await;
    let key = "ashby-live-key-7f3a9c";
    let run = d
        .hubctl_with_stdin(
            &["tenant", "set-ashby-key", "--id", "globex"],
            &format!("  {key}\n"),
        )
        .await
        .ok();
    assert!(!run.printed().contains(key), "{run:?}");
    let id = TenantId::parse("globex").unwrap();
    assert_eq!(d.secret(&d.names.ashby_api_key(&id)).await, vec![key]);
    assert!(run.stdout.contains(&d.names.ashby_api_key(&id)));

    // An empty key is refused and the stored one is kept.
    d.hubctl_with_stdin(&["tenant", "set-ashby-key", "--id", "globex"], "\n")
        .await
        .fails(2, "no Ashby API key");
    d.hubctl_with_stdin(
        &["tenant", "set-ashby-key", "--id", "globex"],
        "two words\n",
    )
    .await
    .fails(2, "one line without spaces");
    assert_eq!(d.secret(&d.names.ashby_api_key(&id)).await, vec![key]);

    // No key is stored for a tenant that does not exist.
    d.hubctl_with_stdin(&["tenant", "set-ashby-key", "--id", "ghost"], key)
        .await
        .fails(1, "no tenant ghost");

    let listed = d.hubctl(&["tenant", "list", "--json"]).await.ok();
    assert!(!listed.printed().contains(key));
    assert_eq!(listed.json()["tenants"][0]["ashby_api_key"]["set"], true);
}

#[tokio::test]
async fn a_rotated_token_works_beside_the_old_one_until_the_old_one_is_revoked() {
    let d = Deployment::new().await;
    let old = d.create_tenant("globex", &[]).await;
    let run = d
        .hubctl(&["tenant", "rotate-token", "--id", "globex", "--json"])
        .await
        .ok();
    let new = run.json()["trigger_token"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(
        run.json()["other_tokens"][0]["hash"],
        hash(&old).to_hex(),
        "the rotation names the old token to revoke"
    );
    assert_eq!(d.who(&old).await, tenant("globex"));
    assert_eq!(d.who(&new).await, tenant("globex"));

    // The listing shows both hashes, and neither token.
    let listed = d
        .hubctl(&["tenant", "list", "--show-token-hashes"])
        .await
        .ok();
    assert!(listed.stdout.contains(&hash(&old).to_hex()), "{listed:?}");
    assert!(listed.stdout.contains(&hash(&new).to_hex()), "{listed:?}");
    assert!(!listed.printed().contains(&old) && !listed.printed().contains(&new));

    // Revoked by a prefix of its hash, as copied from the listing.
    let prefix = &hash(&old).to_hex()[..12];
    d.hubctl(&[
        "tenant",
        "revoke-token",
        "--id",
        "globex",
        "--token-hash",
        prefix,
    ])
    .await
    .ok();
    assert_eq!(d.who(&old).await, None);
    assert_eq!(d.who(&new).await, tenant("globex"));
    d.hubctl(&[
        "tenant",
        "revoke-token",
        "--id",
        "globex",
        "--token-hash",
        prefix,
    ])
    .await
    .fails(1, "holds no token");

    // The last token is not revoked: that would lock the customer out without a word.
    d.hubctl(&[
        "tenant",
        "revoke-token",
        "--id",
        "globex",
        "--token-hash",
        &hash(&new).to_hex(),
    ])
    .await
    .fails(1, "only token");
    assert_eq!(d.who(&new).await, tenant("globex"));
    d.hubctl(&[
        "tenant",
        "revoke-token",
        "--id",
        "globex",
        "--token-hash",
        "not-hex",
    ])
    .await
    .fails(2, "--token-hash");
}

#[tokio::test]
async fn a_disabled_tenant_s_tokens_stop_working_until_it_is_enabled_again() {
    let d = Deployment::new().await;
    let old = d.create_tenant("globex", &[]).await;
    let run = d
        .hubctl(&["tenant", "rotate-token", "--id", "globex", "--json"])
        .await
        .ok();
    let new = run.json()["trigger_token"].as_str().unwrap().to_owned();
    let run = d
        .hubctl(&["tenant", "disable", "--id", "globex"])
        .await
        .ok();
    assert!(run.stdout.contains("401"), "{}", run.stdout);
    assert_eq!(d.who(&old).await, None);
    assert_eq!(d.who(&new).await, None);
    let listed = d.hubctl(&["tenant", "list"]).await.ok();
    assert!(listed.stdout.contains("disabled"), "{}", listed.stdout);
    d.hubctl(&["tenant", "enable", "--id", "globex"]).await.ok();
    assert_eq!(d.who(&old).await, tenant("globex"));
    assert_eq!(d.who(&new).await, tenant("globex"));
    d.hubctl(&["tenant", "disable", "--id", "ghost"])
        .await
        .fails(1, "no tenant ghost");
}

#[tokio::test]
async fn packages_are_enabled_only_when_a_vendor_offers_them() {
    let d = Deployment::new().await;
    d.add_acme().await;
    let token = d.create_tenant("globex", &[]).await;
    d.hubctl(&[
        "vendor",
        "add-package",
        "--id",
        "acme",
        "--package",
        "drug-test:Drug test:Ten-panel",
    ])
    .await
    .ok();
    let run = d
        .hubctl(&[
            "tenant",
            "enable-package",
            "--id",
            "globex",
            "--package",
            "acme/drug-test",
        ])
        .await
        .ok();
    let drug = PackageRef::parse("acme/drug-test").unwrap();
    assert!(run.stdout.contains(&drug.type_id().to_string()));
    let t = d
        .store
        .tenant_by_token(&hash(&token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.packages, vec![drug.clone()]);

    d.hubctl(&[
        "tenant",
        "enable-package",
        "--id",
        "globex",
        "--package",
        "acme/premium",
    ])
    .await
    .fails(1, "not offered");
    d.hubctl(&[
        "tenant",
        "enable-package",
        "--id",
        "globex",
        "--package",
        "ghost/basic",
    ])
    .await
    .fails(1, "no vendor ghost");
    d.hubctl(&[
        "tenant",
        "create",
        "--id",
        "initech",
        "--name",
        "Initech",
        "--package",
        "acme/nope",
    ])
    .await
    .fails(1, "not offered");
    assert_eq!(
        d.store
            .tenant(&TenantId::parse("initech").unwrap())
            .await
            .unwrap(),
        None
    );

    d.hubctl(&[
        "tenant",
        "disable-package",
        "--id",
        "globex",
        "--package",
        "acme/drug-test",
    ])
    .await
    .ok();
    let t = d
        .store
        .tenant_by_token(&hash(&token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.packages, vec![]);
}

#[tokio::test]
async fn a_new_vendor_s_printed_secret_is_stored_and_verifies_its_callbacks() {
    let d = Deployment::new().await;
    let secret = d.add_acme().await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    let acme = hub::domain::VendorId::parse("acme").unwrap();
    let stored = d.secret(&d.names.signing_secret(&acme)).await;
    assert_eq!(stored, vec![secret.clone()]);
    assert!(verifies(&secret, &stored));
    assert!(!verifies(
        hub::domain::generate_signing_secret().expose_secret(),
        &stored
    ));
    let vendor = d.store.vendor(&acme).await.unwrap().unwrap();
    assert_eq!(vendor.order_url.as_str(), "https://acme.example/hub/orders");
    assert_eq!(vendor.packages[0].description, "County and national search");

    // Adding it again neither replaces it nor touches its secret.
    d.hubctl(&[
        "vendor",
        "add",
        "--id",
        "acme",
        "--name",
        "Impostor",
        "--order-url",
        "https://impostor.example/orders",
    ])
    .await
    .fails(1, "already exists");
    assert_eq!(d.secret(&d.names.signing_secret(&acme)).await, stored);
    assert_eq!(d.store.vendor(&acme).await.unwrap().unwrap(), vendor);
}

#[tokio::test]
async fn a_rotated_vendor_secret_keeps_the_previous_one_verifying() {
    let d = Deployment::new().await;
    let first = d.add_acme().await;
    let run = d
        .hubctl(&["vendor", "rotate-secret", "--id", "acme", "--json"])
        .await
        .ok();
    let second = run.json()["signing_secret"].as_str().unwrap().to_owned();
    assert!(second.starts_with("whsec_") && second != first);
    let acme = hub::domain::VendorId::parse("acme").unwrap();
    let stored = d.secret(&d.names.signing_secret(&acme)).await;
    assert_eq!(stored, vec![second.clone(), first.clone()]);
    assert!(verifies(&second, &stored));
    assert!(
        verifies(&first, &stored),
        "the previous secret still verifies"
    );
    d.hubctl(&["vendor", "rotate-secret", "--id", "ghost"])
        .await
        .fails(1, "no vendor ghost");
}

#[tokio::test]
async fn json_output_parses_and_list_commands_print_no_credential() {
    let d = Deployment::new().await;
    let secret = d.add_acme().await;
    let first = d
        .create_tenant("globex", &["--package", "acme/criminal-basic"])
        .await;
    let second = d
        .hubctl(&["tenant", "rotate-token", "--id", "globex", "--json"])
        .await
        .ok()
        .json()["trigger_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = "ashby-key-9b1e";
    d.hubctl_with_stdin(&["tenant", "set-ashby-key", "--id", "globex"], key)
        .await
        .ok();
    let credentials = [first.as_str(), second.as_str(), key, secret.as_str()];
    for args in [
        &["tenant", "list"][..],
        &["tenant", "list", "--show-token-hashes"],
        &["tenant", "list", "--json"],
        &["tenant", "list", "--show-token-hashes", "--json"],
        &["vendor", "list"],
        &["vendor", "list", "--json"],
    ] {
        let run = d.hubctl(args).await.ok();
        for c in credentials {
            assert!(!run.printed().contains(c), "{args:?} printed a credential");
        }
        if args.contains(&"--json") {
            run.json();
        }
    }

    let tenants = d.hubctl(&["tenant", "list", "--json"]).await.ok().json();
    let globex = &tenants["tenants"][0];
    assert_eq!(globex["id"], "globex");
    assert_eq!(globex["status"], "enabled");
    assert_eq!(globex["token_count"], 2);
    assert!(globex.get("tokens").is_none(), "hashes only when asked for");
    let type_id = PackageRef::parse("acme/criminal-basic")
        .unwrap()
        .type_id()
        .to_string();
    assert_eq!(
        globex["packages"][0]["assessment_type_id"],
        type_id.as_str()
    );
    let with_hashes = d
        .hubctl(&["tenant", "list", "--show-token-hashes", "--json"])
        .await
        .ok()
        .json();
    let hashes: Vec<&str> = with_hashes["tenants"][0]["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["hash"].as_str().unwrap())
        .collect();
    let (h1, h2) = (hash(&first).to_hex(), hash(&second).to_hex());
    assert!(hashes.contains(&h1.as_str()) && hashes.contains(&h2.as_str()));

    let vendors = d.hubctl(&["vendor", "list", "--json"]).await.ok().json();
    let acme = &vendors["vendors"][0];
    assert_eq!(acme["id"], "acme");
    assert_eq!(acme["signing_secret"]["set"], true);
    assert_eq!(acme["packages"][0]["assessment_type_id"], type_id.as_str());
}

#[tokio::test]
async fn bad_input_fails_with_a_sentence_and_an_exit_code_and_registers_nothing() {
    let d = Deployment::new().await;
    let add = |url: &'static str, loopback: bool| {
        let mut args = vec![
            "vendor",
            "add",
            "--id",
            "sneaky",
            "--name",
            "Sneaky",
            "--order-url",
            url,
        ];
        if loopback {
            args.push("--allow-insecure-loopback");
        }
        args
    };
    for (url, loopback, words) in [
        ("http://vendor.example/orders", false, "https"),
        (
            "https://169.254.169.254/latest/meta-data/",
            false,
            "metadata",
        ),
        ("http://169.254.169.254/", true, "metadata"),
        ("https://10.1.2.3/orders", false, "private"),
        ("https://[fe80::1]/orders", true, "link-local"),
        (
            "http://127.0.0.1:9100/orders",
            false,
            "--allow-insecure-loopback",
        ),
    ] {
        d.hubctl(&add(url, loopback)).await.fails(2, words);
    }
    let vendors = d.hubctl(&["vendor", "list", "--json"]).await.ok().json();
    assert_eq!(vendors["vendors"], serde_json::json!([]));

    // Plain http to loopback is for local runs, and allowed there.
    d.hubctl(&add("http://127.0.0.1:9100/orders", true))
        .await
        .ok();

    // Usage errors found by the argument parser exit 2 as well.
    let run = d
        .hubctl(&["tenant", "create", "--id", "Not A Slug", "--name", "X"])
        .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("tenant id"), "{run:?}");
    d.hubctl(&[
        "vendor",
        "add-package",
        "--id",
        "sneaky",
        "--package",
        "no-name",
    ])
    .await
    .fails(2, "id:name");

    // Without a table there is nothing to act on.
    d.run(&["tenant", "list"], None, false)
        .await
        .fails(2, "no table");
    // With one named on the command line instead, it works.
    d.run(&["tenant", "list", "--table", &d.table], None, false)
        .await
        .ok();
    // A table that does not exist is a failure, named.
    d.run(&["tenant", "list", "--table", "no-such-table"], None, false)
        .await
        .fails(1, "no-such-table");

    // Nothing above left a tenant behind.
    let dump = d.table_dump().await;
    assert!(!dump.contains("TENANT#"), "{dump}");
}

/// A vendor's refusal is its own free text and may quote the candidate ("… for Ada Lovelace"):
/// `assessment show` prints it, and the update that told Ashby, only with `--reveal-pii`.
#[tokio::test]
async fn a_vendor_s_rejection_text_is_shown_only_with_reveal_pii() {
    use hub::ats::ashby::UpdateRequest;
    use hub::clock::{Clock, SystemClock};
    use hub::domain::{
        Assessment, AssessmentId, DeliveryKind, NewDelivery, Notice, PackageRef, Status, TenantId,
    };
    use hub::ports::{
        Assessments, Change, ChangeOutcome, ChangeWrite, CreateOutcome, NewAssessment, StartKey,
    };

    let d = Deployment::new().await;
    let words = "Ada Lovelacexyz, born 1815, is outside our coverage area";
    let package = PackageRef::parse("acme/criminal-basic").unwrap();
    let tenant = TenantId::parse("globex").unwrap();
    let id = AssessmentId::new();
    let now = SystemClock.now();
    let later = now + std::time::Duration::from_millis(1);
    let new = NewAssessment {
        assessment: Assessment {
            id,
            tenant_id: tenant.clone(),
            vendor_id: package.vendor.clone(),
            package_id: package.package.clone(),
            assessment_type_id: package.type_id(),
            application_id: "app-1".into(),
            status: Status::Ordering,
            status_label: None,
            vendor_reference: None,
            rejection_message: None,
            created_at_ms: now,
            updated_at_ms: now,
            last_update_ms: now,
            update_seq: 0,
            version: 1,
            candidate_id: None,
            ats: hub::domain::Ats::Ashby,
            ats_url: None,
            summary: None,
            ats_errors: 0,
            last_ats_error: None,
        },
        start_key: StartKey {
            tenant_id: tenant,
            application_id: "app-1".into(),
            assessment_type_id: package.type_id(),
        },
        order: NewDelivery {
            kind: DeliveryKind::VendorOrder,
            body: format!(r#"{{"assessment_id":"{id}","package_id":"criminal-basic"}}"#),
            next_attempt_ms: now,
            leased_until_ms: hub::clock::Timestamp::EPOCH,
            expires_at_s: None,
        },
        keep_finished: false,
    };
    assert_eq!(
        d.store.create_assessment(&new).await.unwrap(),
        CreateOutcome::Created
    );
    // What the delivery queue writes when the vendor refuses a queued order.
    let update = UpdateRequest::from_notice(
        id,
        later,
        &Notice::Ended {
            title: "Not accepted by the provider".into(),
            reason: words.into(),
            metadata: vec![],
        },
    );
    let write = ChangeWrite {
        assessment_id: id,
        marker: None,
        change: Some(Change {
            expected_version: 1,
            expected_update_seq: 1,
            status: Status::Rejected,
            status_label: None,
            rejection_message: Some(words.into()),
            vendor_reference: None,
            now_ms: later,
            deliveries: vec![NewDelivery {
                kind: DeliveryKind::AtsUpdate,
                body: serde_json::to_string(&update).unwrap(),
                next_attempt_ms: later,
                leased_until_ms: hub::clock::Timestamp::EPOCH,
                expires_at_s: None,
            }],
            update_ms: Some(later),
            summary: None,
            ats_error: None,
        }),
        settle: Some(1),
    };
    assert_eq!(d.store.apply(&write).await.unwrap(), ChangeOutcome::Applied);

    let id = id.to_string();
    for json in [false, true] {
        let mut args = vec!["assessment", "show", id.as_str()];
        if json {
            args.push("--json");
        }
        let hidden = d.hubctl(&args).await.ok();
        assert!(!hidden.stdout.contains("Lovelacexyz"), "{hidden:?}");
        assert!(hidden.stdout.contains("rejected"), "{hidden:?}");
        if json {
            let v = hidden.json();
            assert_eq!(v["rejection_message"], Value::Null, "{v:#}");
            assert_eq!(v["rejection_message_hidden"], true, "{v:#}");
        } else {
            assert!(hidden.stdout.contains("--reveal-pii"), "{hidden:?}");
        }
        args.push("--reveal-pii");
        let shown = d.hubctl(&args).await.ok();
        assert_eq!(
            shown.stdout.matches(words).count(),
            2,
            "the record's message and the update to Ashby: {shown:?}"
        );
    }
}

#[tokio::test]
async fn package_options_are_added_and_replaced_from_a_json_file_and_bad_ones_refused() {
    use hub::ports::Registry as _;
    let d = Deployment::new().await;
    d.add_acme().await;
    let dir = std::env::temp_dir().join(format!("hubctl-options-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str, body: &str| {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p.to_string_lossy().into_owned()
    };
    let good = file(
        "good.json",
        r#"[{"id": "work_location", "name": "Work location", "type": "ValueSelect", "required": true,
             "possible_values": [{"key": "us", "value": "United States"}]},
            {"id": "note", "name": "Note", "type": "LongText"}]"#,
    );
    d.hubctl(&[
        "vendor",
        "add-package",
        "--id",
        "acme",
        "--package",
        "panel:Drug panel",
        "--options",
        &good,
    ])
    .await
    .ok();
    let vendor = d
        .store
        .vendor(&hub::domain::VendorId::parse("acme").unwrap())
        .await
        .unwrap()
        .unwrap();
    let panel = vendor
        .package(&hub::domain::PackageId::parse("panel").unwrap())
        .unwrap();
    assert_eq!(panel.options.len(), 2);
    assert!(panel.options[0].required);
    assert_eq!(panel.options[0].possible_values[0].key, "us");

    let one = file(
        "one.json",
        r#"[{"id": "tier", "name": "Tier", "type": "Number"}]"#,
    );
    let run = d
        .hubctl(&[
            "vendor",
            "set-options",
            "--id",
            "acme",
            "--package",
            "panel",
            "--options",
            &one,
        ])
        .await
        .ok();
    assert!(run.stdout.contains("acme.panel.tier"), "{run:?}");
    let vendor = d
        .store
        .vendor(&hub::domain::VendorId::parse("acme").unwrap())
        .await
        .unwrap()
        .unwrap();
    let panel = vendor
        .package(&hub::domain::PackageId::parse("panel").unwrap())
        .unwrap();
    assert_eq!(panel.options.len(), 1);
    assert_eq!(panel.options[0].id.as_str(), "tier");

    for (name, body, words) in [
        (
            "noval.json",
            r#"[{"id": "w", "name": "W", "type": "ValueSelect"}]"#,
            "needs possible_values",
        ),
        (
            "type.json",
            r#"[{"id": "w", "name": "W", "type": "Colour"}]"#,
            "unknown variant",
        ),
        (
            "twice.json",
            r#"[{"id": "w", "name": "W", "type": "String"}, {"id": "w", "name": "X", "type": "String"}]"#,
            "declared twice",
        ),
    ] {
        let path = file(name, body);
        d.hubctl(&[
            "vendor",
            "set-options",
            "--id",
            "acme",
            "--package",
            "panel",
            "--options",
            &path,
        ])
        .await
        .fails(2, words);
    }
    let run = d
        .hubctl(&[
            "vendor",
            "set-options",
            "--id",
            "acme",
            "--package",
            "nope",
            "--options",
            &one,
        ])
        .await;
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("no package nope"), "{run:?}");
}

#[tokio::test]
async fn a_greenhouse_tenant_gets_a_partner_key_the_four_urls_and_no_ashby_key() {
    let d = Deployment::new().await;
    d.add_acme().await;
    let run = d
        .hubctl(&[
            "tenant",
            "create",
            "--id",
            "initech",
            "--name",
            "Initech",
            "--ats",
            "greenhouse",
            "--package",
            "acme/criminal-basic",
            "--base-url",
            "https://hub.example.com",
            "--json",
        ])
        .await
        .ok();
    let doc = run.json();
    let key = doc["partner_key"].as_str().unwrap().to_owned();
    assert!(
        key.len() < 171,
        "Greenhouse takes keys under 171 characters"
    );
    assert_eq!(doc["tenant"]["ats"], "greenhouse");
    assert_eq!(
        doc["urls"][1],
        "https://hub.example.com/greenhouse/send_test"
    );
    let t = d
        .store
        .tenant_by_token(&hash(&key))
        .await
        .unwrap()
        .expect("the printed key authenticates");
    assert_eq!(t.ats, hub::domain::Ats::Greenhouse);
    // The hub PATCHes Greenhouse with the key: the functions read it from Secrets Manager.
    assert_eq!(
        d.secret(&d.names.greenhouse_partner_key(&t.id)).await,
        vec![key.clone()]
    );
    assert!(
        !d.table_dump().await.contains(&key),
        "only the hash in the table"
    );

    // Human output: the Greenhouse steps, not Ashby's.
    let run = d
        .hubctl(&[
            "tenant",
            "create",
            "--id",
            "hooli",
            "--name",
            "Hooli",
            "--ats",
            "greenhouse",
            "--base-url",
            "https://hub.example.com",
        ])
        .await
        .ok();
    for words in [
        "https://hub.example.com/greenhouse/list_tests",
        "https://hub.example.com/greenhouse/response_error",
        "Dev",
    ] {
        assert!(run.stdout.contains(words), "{words}: {}", run.stdout);
    }
    assert!(!run.stdout.contains("set-ashby-key"), "{}", run.stdout);
    let listed = d.hubctl(&["tenant", "list", "--json"]).await.ok().json();
    let initech = listed["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "initech")
        .unwrap()
        .clone();
    assert_eq!(initech["ats"], "greenhouse");
    assert_eq!(initech["greenhouse_partner_key"]["set"], true, "{initech}");
    assert!(initech.get("ashby_api_key").is_none(), "{initech}");
    assert!(
        !listed.to_string().contains(&key),
        "a listing never prints the key"
    );

    // A rotated key is the one the PATCHes carry from now on.
    let rotated = d
        .hubctl(&["tenant", "rotate-token", "--id", "initech", "--json"])
        .await
        .ok();
    let new_key = rotated.json()["trigger_token"].as_str().unwrap().to_owned();
    let stored = d.secret(&d.names.greenhouse_partner_key(&t.id)).await;
    assert_eq!(stored[0], new_key);

    d.hubctl_with_stdin(&["tenant", "set-ashby-key", "--id", "initech"], "k")
        .await
        .fails(2, "Greenhouse tenant");
    d.hubctl(&[
        "tenant", "create", "--id", "x1", "--name", "X", "--ats", "workday",
    ])
    .await
    .fails(2, "ashby or greenhouse");
}

/// The code of a printed connect link, checked to be `<base>/connect/<43 characters>`.
fn link_code(url: &str, base: &str) -> String {
    let code = url
        .strip_prefix(&format!("{base}/connect/"))
        .unwrap_or_else(|| panic!("{url} is not a connect link on {base}"));
    assert!(hub::domain::connect::is_connect_code(code), "{code}");
    code.to_owned()
}

#[tokio::test]
async fn a_printed_connect_link_opens_its_tenant_s_page_until_it_is_revoked_and_status_follows_the_connection()
 {
    use hub::clock::{Clock, SystemClock};
    use hub::domain::{AtsCall, DeliveryHealth, DeliveryReport, TokenHash};
    use hub::ports::{Connections, IssueOutcome, RegistryAdmin};
    let d = Deployment::new().await;
    d.add_acme().await;
    let base = "https://hub.example";
    let create = [
        "tenant",
        "create",
        "--id",
        "globex",
        "--name",
        "Globex",
        "--package",
        "acme/criminal-basic",
        "--invite",
        "--json",
    ];

    // Without a base URL the link could not be printed usefully: refused before anything is
    // written.
    d.hubctl(&create).await.fails(2, "base URL");
    assert!(
        d.store
            .tenant(&tenant("globex").unwrap())
            .await
            .unwrap()
            .is_none()
    );

    let mut with_base = create.to_vec();
    with_base.extend(["--base-url", base]);
    let run = d.hubctl(&with_base).await.ok();
    let doc = run.json();
    let code = link_code(doc["connect_url"].as_str().unwrap(), base);
    let expires = doc["expires_at"].as_str().unwrap().to_owned();
    let invite_id = doc["invite_id"].as_str().unwrap().to_owned();
    let id = tenant("globex").unwrap();
    // Created awaiting its customer: no token yet, the link stored by its hash only.
    assert!(d.store.tenant_tokens(&id).await.unwrap().is_empty());
    let link = TokenHash::of(&SecretString::from(code.clone()));
    let invite = d
        .store
        .invite(&link)
        .await
        .unwrap()
        .expect("the link is stored");
    assert_eq!(invite.tenant_id, id);
    assert_eq!(invite.id(), invite_id);
    let days = (invite.expires_at_ms.as_ms() - invite.created_at_ms.as_ms()) / 86_400_000;
    assert_eq!(days, 7, "default validity");
    assert_eq!(hub_tests_time(invite.expires_at_ms), expires);
    assert!(
        !d.table_dump().await.contains(&code),
        "the code itself is stored"
    );

    // A second link for the same tenant, positional id, shorter validity; out-of-range refused.
    d.hubctl(&[
        "tenant",
        "invite",
        "globex",
        "--valid-days",
        "91",
        "--base-url",
        base,
    ])
    .await
    .fails(2, "91");
    let run = d
        .hubctl(&[
            "tenant",
            "invite",
            "globex",
            "--valid-days",
            "2",
            "--base-url",
            base,
            "--json",
        ])
        .await
        .ok();
    let second = link_code(run.json()["connect_url"].as_str().unwrap(), base);
    let second_invite = d
        .store
        .invite(&TokenHash::of(&SecretString::from(second.clone())))
        .await
        .unwrap()
        .expect("second link");
    assert_eq!(
        second_invite.expires_at_ms.as_ms() - second_invite.created_at_ms.as_ms(),
        2 * 86_400_000
    );

    // The listing names both by id, never by code.
    let run = d
        .hubctl(&["tenant", "invites", "globex", "--json"])
        .await
        .ok();
    let listed = run.json()["invites"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().all(|i| i["state"] == "working"), "{listed:?}");
    assert!(!run.stdout.contains(&code) && !run.stdout.contains(&second));
    let text = d
        .hubctl(&["tenant", "invites", "--id", "globex"])
        .await
        .ok();
    assert!(text.stdout.contains(&invite_id), "{text:?}");

    // The printed link works: "Show token" on it issues the tenant's first token.
    let now = SystemClock.now();
    let token = hub::domain::generate_trigger_token();
    assert_eq!(
        d.store
            .issue_connect_token(&link, &TokenHash::of(&token), true, now)
            .await
            .unwrap(),
        IssueOutcome::Issued
    );
    assert_eq!(d.who(token.expose_secret()).await, Some(id.clone()));

    let s = status(&d).await;
    assert_eq!(s["connection"], "waiting_for_ashby", "{s}");
    assert_eq!(s["key"]["stored"], false);
    assert_eq!(s["token_count"], 1);
    assert_eq!(s["invites"]["working"], 2);

    // Ashby calls; then a key is stored: connected, in status and in the list.
    let call = AtsCall {
        at_ms: now,
        route: "/assessment.list".into(),
    };
    assert!(d.store.record_ats_call(&id, &call, now).await.unwrap());
    assert_eq!(status(&d).await["connection"], "waiting_for_key");
    d.hubctl_with_stdin(
        &["tenant", "set-ashby-key", "--id", "globex"],
        "ashby-key-1234\n",
    )
    .await
    .ok();
    let s = status(&d).await;
    assert_eq!(s["connection"], "connected", "{s}");
    assert_eq!(s["last_call"]["route"], "/assessment.list");
    assert_eq!(s["key"]["stored"], true);
    assert!(!format!("{s}").contains("ashby-key-1234"));

    // Ashby refuses the key on a delivery: needs attention, with why.
    let refused = DeliveryReport {
        at_ms: now,
        outcome: DeliveryHealth::Refused,
        detail: "Ashby answered 401".into(),
    };
    assert!(d.store.record_delivery(&id, &refused, now).await.unwrap());
    let s = status(&d).await;
    assert_eq!(s["connection"], "needs_attention", "{s}");
    assert_eq!(s["needs_attention"], true);
    assert_eq!(s["last_delivery"]["outcome"], "refused");
    let text = d.hubctl(&["tenant", "status", "--id", "globex"]).await.ok();
    assert!(text.stdout.contains("Needs attention"), "{text:?}");
    assert!(text.stdout.contains("Ashby refused the key"), "{text:?}");
    let list = d.hubctl(&["tenant", "list", "--json"]).await.ok().json();
    assert_eq!(
        list["tenants"][0]["connection"], "needs_attention",
        "{list}"
    );
    let table = d.hubctl(&["tenant", "list"]).await.ok();
    assert!(table.stdout.contains("CONNECTION"), "{table:?}");
    assert!(table.stdout.contains("needs_attention"), "{table:?}");

    // Revoking ends the link at once; unknown ids and bad shapes are refused.
    d.hubctl(&["tenant", "invites", "globex", "--revoke", &invite_id])
        .await
        .ok();
    let ended = d.store.invite(&link).await.unwrap().unwrap();
    assert!(ended.revoked_at_ms.is_some());
    let listed = d
        .hubctl(&["tenant", "invites", "globex", "--json"])
        .await
        .ok()
        .json();
    let states: Vec<(String, String)> = listed["invites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().into(),
                i["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        states.contains(&(invite_id.clone(), "revoked".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&(second_invite.id(), "working".into())),
        "{states:?}"
    );
    d.hubctl(&["tenant", "invites", "globex", "--revoke", "000000000000"])
        .await
        .fails(1, "no connect link");
    d.hubctl(&["tenant", "invites", "globex", "--revoke", "xyz"])
        .await
        .fails(2, "12 hex digits");

    // A disabled tenant gets no link; nor does a Greenhouse one or an unknown one.
    d.hubctl(&["tenant", "disable", "--id", "globex"])
        .await
        .ok();
    d.hubctl(&["tenant", "invite", "globex", "--base-url", base])
        .await
        .fails(1, "disabled");
    d.hubctl(&[
        "tenant",
        "create",
        "--id",
        "gh",
        "--name",
        "GH",
        "--ats",
        "greenhouse",
    ])
    .await
    .ok();
    d.hubctl(&["tenant", "invite", "gh", "--base-url", base])
        .await
        .fails(2, "Greenhouse");
    let run = d
        .hubctl(&[
            "tenant",
            "create",
            "--id",
            "gh2",
            "--name",
            "GH",
            "--ats",
            "greenhouse",
            "--invite",
            "--base-url",
            base,
        ])
        .await;
    run.fails(
        2,
        "--invite is for Ashby tenants: a Greenhouse tenant's partner key is printed here and sent",
    );
    assert!(
        d.store
            .tenant(&tenant("gh2").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    d.hubctl(&["tenant", "invite", "nobody", "--base-url", base])
        .await
        .fails(1, "no tenant nobody");
    d.hubctl(&[
        "tenant",
        "invite",
        "globex",
        "--id",
        "globex",
        "--base-url",
        base,
    ])
    .await
    .fails(2, "cannot be used with");
}

/// `hubctl tenant status globex --json`.
async fn status(d: &Deployment) -> Value {
    d.hubctl(&["tenant", "status", "globex", "--json"])
        .await
        .ok()
        .json()
}

/// hubctl's way of printing an instant (RFC 3339 UTC to the second).
fn hub_tests_time(t: hub::clock::Timestamp) -> String {
    aws_sdk_dynamodb::primitives::DateTime::from_secs(t.as_ms() / 1000)
        .fmt(aws_sdk_dynamodb::primitives::DateTimeFormat::DateTime)
        .unwrap()
}
