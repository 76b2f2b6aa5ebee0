//! `marginwise apply` as a process against the local stand-in with the app's client id and
//! secret instead of an access token: the client credentials grant before the first request,
//! what a refused exchange says (and never says), which credential wins, a token that expires
//! mid-run, and the credentials file's `client_id`/`client_secret`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use local_store::{AppCredentials, Config, Handle, LocalStore, StoreData};
use marginwise_engine::format::{NAMESPACE, PROFILE_KEY};
use marginwise_engine::{Profile, Segment};
use model_pipeline::plan::{
    DELETIONS_FILE, METAFIELD_TYPE, MetafieldsSetInput, PLAN_FILE, customer_gid,
};

const CUSTOMERS: u64 = 30;
const CLIENT_ID: &str = "mw-client-id";
const CLIENT_SECRET: &str = "mw-client-secret-5b1f";

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("client-credentials")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A store whose only objects are customers 1..=CUSTOMERS, with the app installed as `app`
/// (`None`: not installed).
fn store(app: Option<AppCredentials>) -> Handle {
    let mut customers = String::new();
    for i in 1..=CUSTOMERS {
        customers.push_str(&format!("{{\"id\":\"{}\"}}\n", customer_gid(i)));
    }
    let data = StoreData::from_jsonl(&[("customers.jsonl", &customers)]).unwrap();
    LocalStore::start(Config {
        data: Some(Arc::new(data)),
        client_credentials: app,
        ..Config::default()
    })
    .unwrap()
}

fn installed() -> Option<AppCredentials> {
    Some(AppCredentials::new(CLIENT_ID, CLIENT_SECRET))
}

/// A plan folder with a profile for every customer of the store.
fn plan(name: &str) -> PathBuf {
    let dir = scratch(name);
    let mut text = String::new();
    for customer in 1..=CUSTOMERS {
        let profile = Profile {
            segment: Segment::ALL[(customer % 5) as usize],
            clv_minor: 1_000 + customer as i64,
            churn_bps: 2_500,
            expected_orders_12m_milli: 1_200,
            discount_share_bps: 0,
            p_alive_bps: 7_500,
        };
        let record = MetafieldsSetInput {
            owner_id: customer_gid(customer),
            namespace: NAMESPACE.to_string(),
            key: PROFILE_KEY.to_string(),
            kind: METAFIELD_TYPE.to_string(),
            value: profile.encode(),
        };
        text.push_str(&serde_json::to_string(&record).unwrap());
        text.push('\n');
    }
    std::fs::write(dir.join(PLAN_FILE), text).unwrap();
    std::fs::write(dir.join(DELETIONS_FILE), "").unwrap();
    dir
}

/// `marginwise apply --endpoint <store>` with `args` and `env` added, and none of the
/// credentials variables inherited from the test's own environment.
fn apply(store: &Handle, plan: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_marginwise"));
    command
        .args(["--quiet", "apply", "--plan"])
        .arg(plan)
        .args(["--endpoint", &store.url(), "--jitter-seed", "1"])
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in [
        "SHOPIFY_SHOP",
        "SHOPIFY_ACCESS_TOKEN",
        "SHOPIFY_CLIENT_ID",
        "SHOPIFY_CLIENT_SECRET",
    ] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    // A client that kept exchanging and retrying would never end: give it a minute.
    let mut child = command.spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!(
                "marginwise apply still running after a minute: {:?}",
                store.stats()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn client_env(secret: &str) -> [(&'static str, &str); 2] {
    [
        ("SHOPIFY_CLIENT_ID", CLIENT_ID),
        ("SHOPIFY_CLIENT_SECRET", secret),
    ]
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every customer got its profile, each written once.
fn assert_applied(store: &Handle, output: &Output) {
    assert!(output.status.success(), "{}", stderr(output));
    let stats = store.stats();
    assert_eq!(stats.writes_applied, CUSTOMERS, "{stats:?}");
    assert_eq!(stats.duplicate_writes, 0, "{stats:?}");
    assert_eq!(stats.metafields_stored, CUSTOMERS, "{stats:?}");
}

#[test]
fn client_id_and_secret_from_the_environment_get_the_token_apply_uses() {
    let store = store(installed());
    let plan = plan("env");
    let output = apply(&store, &plan, &[], &client_env(CLIENT_SECRET));
    assert_applied(&store, &output);
    let stats = store.stats();
    assert_eq!(
        stats.tokens_granted, 1,
        "one exchange for the run: {stats:?}"
    );
    assert_eq!(stats.unauthorized, 0, "{stats:?}");
}

#[test]
fn a_wrong_secret_fails_naming_the_shop_and_the_likely_causes_but_not_the_secret() {
    let wrong = "wrong-secret-value-8c2d";
    for (case, app) in [("wrong secret", installed()), ("not installed", None)] {
        let store = store(app);
        let plan = plan("wrong-secret");
        let output = apply(&store, &plan, &[], &client_env(wrong));
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{case}: {text}");
        for expected in [
            format!(
                "{} refused the app's client id and secret (HTTP 400",
                store.url()
            ),
            "invalid_client".to_string(),
            "the app may not be installed on that store, or the client id or secret is wrong"
                .to_string(),
            "only for stores owned by the app's own organization".to_string(),
        ] {
            assert!(text.contains(&expected), "{case}: `{expected}` in {text}");
        }
        assert!(
            !text.contains(wrong) && !text.contains(CLIENT_SECRET),
            "{case}: {text}"
        );
        let stats = store.stats();
        assert_eq!(stats.grants_refused, 1, "{case}: {stats:?}");
        assert_eq!(
            stats.graphql_requests + stats.unauthorized,
            0,
            "{case}: {stats:?}"
        );
    }
}

#[test]
fn a_given_token_wins_over_the_client_credentials() {
    for (case, flag, token_env) in [
        ("--token", true, false),
        ("$SHOPIFY_ACCESS_TOKEN", false, true),
    ] {
        let store = store(installed());
        let plan = plan("token-wins");
        let token = store.token().to_string();
        let mut env = client_env(CLIENT_SECRET).to_vec();
        if token_env {
            env.push(("SHOPIFY_ACCESS_TOKEN", &token));
        }
        let args: &[&str] = if flag { &["--token", &token] } else { &[] };
        let output = apply(&store, &plan, args, &env);
        assert_applied(&store, &output);
        let stats = store.stats();
        assert_eq!(
            stats.tokens_granted + stats.grants_refused,
            0,
            "{case}: no exchange: {stats:?}"
        );
    }
}

#[test]
fn a_token_that_expires_mid_run_is_exchanged_again_and_the_run_completes() {
    // Each token authorizes one request, then is refused as a day-old one would be; the run
    // sends two (30 profiles, 25 per metafieldsSet).
    let store = store(Some(AppCredentials {
        requests_per_token: Some(1),
        ..AppCredentials::new(CLIENT_ID, CLIENT_SECRET)
    }));
    let plan = plan("expires");
    let output = apply(&store, &plan, &[], &client_env(CLIENT_SECRET));
    assert_applied(&store, &output);
    let stats = store.stats();
    // The second write was refused once, followed by one exchange, and sent again.
    assert_eq!(stats.write_calls, 2, "{stats:?}");
    assert_eq!(
        (stats.tokens_granted, stats.unauthorized),
        (2, 1),
        "{stats:?}"
    );
    assert_eq!(stats.rejected_calls, 0, "{stats:?}");
}

#[test]
fn a_new_token_that_is_refused_too_is_not_exchanged_again() {
    // Tokens that never work: one exchange for the request, one more after its 401, no loop.
    let store = store(Some(AppCredentials {
        requests_per_token: Some(0),
        ..AppCredentials::new(CLIENT_ID, CLIENT_SECRET)
    }));
    let plan = plan("refused-again");
    let output = apply(&store, &plan, &[], &client_env(CLIENT_SECRET));
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("refused the access token (HTTP 401)"),
        "{text}"
    );
    let stats = store.stats();
    assert_eq!(
        (stats.tokens_granted, stats.unauthorized),
        (2, 2),
        "{stats:?}"
    );
    assert_eq!(stats.writes_applied, 0, "{stats:?}");
}

#[test]
fn a_credentials_file_with_client_id_and_secret_works() {
    let store = store(installed());
    let plan = plan("file");
    let file = plan.join("credentials.json");
    std::fs::write(
        &file,
        format!(r#"{{"client_id": "{CLIENT_ID}", "client_secret": "{CLIENT_SECRET}"}}"#),
    )
    .unwrap();
    let output = apply(
        &store,
        &plan,
        &["--credentials", file.to_str().unwrap()],
        &[],
    );
    assert_applied(&store, &output);
    assert_eq!(store.stats().tokens_granted, 1);
}

#[test]
fn a_granted_scope_without_what_apply_needs_is_a_warning_not_a_failure() {
    let store = store(Some(AppCredentials {
        scope: "read_customers,write_products,read_orders".to_string(),
        ..AppCredentials::new(CLIENT_ID, CLIENT_SECRET)
    }));
    let plan = plan("scope");
    let output = apply(&store, &plan, &[], &client_env(CLIENT_SECRET));
    // The stand-in does not enforce scopes: the run completes, after the warning.
    assert_applied(&store, &output);
    let text = stderr(&output);
    let warning = text
        .lines()
        .find(|line| line.starts_with("warning: "))
        .unwrap_or_else(|| panic!("no warning in {text}"));
    assert!(
        warning.contains("lacks write_customers,") && !warning.contains("lacks write_products"),
        "{warning}"
    );
}

/// `webhooks` signs with and exchanges the same client secret (nothing but
/// `SHOPIFY_CLIENT_ID`/`SHOPIFY_CLIENT_SECRET` set), and a granted scope without
/// `write_customers`, which a redaction's delete needs, is a warning too.
#[test]
fn webhooks_use_the_client_secret_and_warn_about_a_missing_scope() {
    let store = store(Some(AppCredentials {
        scope: "read_customers,read_products".to_string(),
        ..AppCredentials::new(CLIENT_ID, CLIENT_SECRET)
    }));
    let plan = plan("webhooks-scope");
    let shop = "marginwise-test.myshopify.com";
    let body = format!(
        r#"{{"shop_id":1,"shop_domain":"{shop}","customer":{{"id":1}},"orders_to_redact":[]}}"#
    );
    let payload = plan.join("redact.json");
    std::fs::write(&payload, &body).unwrap();
    let secret = model_pipeline::privacy::AppSecret::new(CLIENT_SECRET).unwrap();
    let hmac = model_pipeline::privacy::sign(&secret, body.as_bytes());
    let mut command = Command::new(env!("CARGO_BIN_EXE_marginwise"));
    command
        .args(["--quiet", "webhooks", "--replay"])
        .arg(&payload)
        .args(["--topic", "customers/redact", "--hmac", &hmac, "--plan"])
        .arg(&plan)
        .args(["--endpoint", &store.url(), "--shop", shop])
        .env("RUST_BACKTRACE", "0");
    for name in [
        "SHOPIFY_SHOP",
        "SHOPIFY_ACCESS_TOKEN",
        "SHOPIFY_API_SECRET",
        "SHOPIFY_CLIENT_ID",
        "SHOPIFY_CLIENT_SECRET",
    ] {
        command.env_remove(name);
    }
    for (name, value) in client_env(CLIENT_SECRET) {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    let text = stderr(&output);
    assert!(output.status.success(), "{text}");
    assert!(
        text.lines()
            .any(|line| line.starts_with("warning: ") && line.contains("write_customers")),
        "{text}"
    );
    assert!(!text.contains(CLIENT_SECRET), "{text}");
    assert_eq!(store.stats().tokens_granted, 1);
}
