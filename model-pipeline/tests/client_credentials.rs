//! `marginwise apply` as a process against the local stand-in with the app's client id and
//! secret instead of an access token: the client credentials grant before the first request,
//! what a refused exchange says (and never says), which credential wins, a token that expires
//! mid-run, and the credentials file's `client_id`/`client_secret`. Then the authorization code
//! grant: `marginwise auth` with the stand-in approving for the merchant, its callback checks,
//! and the expiring tokens it stores, renewed by later commands.
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

/// The `marginwise` binary, with none of the credentials variables inherited from the test's
/// own environment.
fn marginwise() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_marginwise"));
    command.env("RUST_BACKTRACE", "0");
    for name in [
        "SHOPIFY_SHOP",
        "SHOPIFY_ACCESS_TOKEN",
        "SHOPIFY_CLIENT_ID",
        "SHOPIFY_CLIENT_SECRET",
    ] {
        command.env_remove(name);
    }
    command
}

/// `marginwise apply --endpoint <store>` with `args` and `env` added.
fn apply(store: &Handle, plan: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = marginwise();
    command
        .args(["--quiet", "apply", "--plan"])
        .arg(plan)
        .args(["--endpoint", &store.url(), "--jitter-seed", "1"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
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
    // sends three (a first page read, the state database being new, then 30 profiles, 25 per
    // metafieldsSet).
    let store = store(Some(AppCredentials {
        requests_per_token: Some(1),
        ..AppCredentials::new(CLIENT_ID, CLIENT_SECRET)
    }));
    let plan = plan("expires");
    let output = apply(&store, &plan, &[], &client_env(CLIENT_SECRET));
    assert_applied(&store, &output);
    let stats = store.stats();
    // Each write was refused once, followed by one exchange, and sent again.
    assert_eq!(
        (stats.graphql_requests, stats.write_calls),
        (3, 2),
        "{stats:?}"
    );
    assert_eq!(
        (stats.tokens_granted, stats.unauthorized),
        (3, 2),
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
    let mut command = marginwise();
    command
        .env_remove("SHOPIFY_API_SECRET")
        .args(["--quiet", "webhooks", "--replay"])
        .arg(&payload)
        .args(["--topic", "customers/redact", "--hmac", &hmac, "--plan"])
        .arg(&plan)
        .args(["--endpoint", &store.url(), "--shop", shop]);
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

// The authorization code grant: `marginwise auth` (a store outside the app's organization).

const SHOP: &str = "local-store.myshopify.com";

/// A credentials file holding the app's client id and secret only, as `auth` starts from.
fn app_file(dir: &Path) -> PathBuf {
    let file = dir.join("credentials.json");
    std::fs::write(
        &file,
        format!(r#"{{"client_id": "{CLIENT_ID}", "client_secret": "{CLIENT_SECRET}"}}"#),
    )
    .unwrap();
    file
}

/// `marginwise auth` against the stand-in, started with its stdin and stderr piped.
fn start_auth(store: &Handle, file: &Path, shop: &str, redirect: &str) -> std::process::Child {
    let mut command = marginwise();
    command
        .args([
            "--quiet",
            "auth",
            "--endpoint",
            &store.url(),
            "--shop",
            shop,
        ])
        .arg("--credentials")
        .arg(file)
        .args(["--redirect-uri", redirect, "--wait", "30"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.spawn().unwrap()
}

/// The approval address `auth` printed (read from its stderr, which is then drained on a thread
/// so the child never blocks on it); the thread returns everything it read.
fn approval_address(child: &mut std::process::Child) -> (String, std::thread::JoinHandle<String>) {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert_ne!(
            reader.read_line(&mut line).unwrap(),
            0,
            "no address in {seen}"
        );
        seen.push_str(&line);
        if let Some(url) = line.trim().strip_prefix("http")
            && url.contains("/admin/oauth/authorize?")
        {
            let url = format!("http{url}");
            let rest = std::thread::spawn(move || {
                let mut rest = String::new();
                std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
                seen + &rest
            });
            return (url, rest);
        }
    }
}

/// What the merchant's browser does on the approval page: the stand-in approves at once and
/// answers with the redirect to the app's callback, whose address is returned.
fn approve(url: &str) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent.get(url).call().unwrap();
    assert_eq!(response.status().as_u16(), 302);
    response.headers()["location"].to_str().unwrap().to_string()
}

/// Waits (at most a minute) for `auth` to end.
fn finish(child: std::process::Child, stderr: std::thread::JoinHandle<String>) -> (Output, String) {
    let started = Instant::now();
    let mut child = child;
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("marginwise auth still running after a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    (output, stderr.join().unwrap())
}

fn file_json(file: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

/// `auth --without-all-orders` asks for every scope of the app but `read_all_orders`, which
/// Shopify grants on request (an app may leave it out of its configuration until then).
#[test]
fn auth_can_leave_out_the_scope_granted_on_request() {
    let store = store(installed());
    let dir = tempfile::tempdir().unwrap();
    let redirect = format!("http://127.0.0.1:{}/auth/callback", free_port());
    let mut command = marginwise();
    command
        .args([
            "--quiet",
            "auth",
            "--without-all-orders",
            "--endpoint",
            &store.url(),
        ])
        .args(["--shop", SHOP, "--credentials"])
        .arg(app_file(dir.path()))
        .args(["--redirect-uri", &redirect, "--wait", "30"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let (url, _stderr) = approval_address(&mut child);
    let _ = child.kill();
    let _ = child.wait();
    let query = url.split_once('?').unwrap().1;
    let scope = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.to_string())
        .unwrap();
    assert!(!scope.contains("read_all_orders"), "{scope}");
    assert!(
        scope.contains("read_orders") && scope.contains("write_discounts"),
        "{scope}"
    );
}

/// `marginwise auth` on a loopback redirect, the merchant approving at once: it must succeed.
fn authorize_on_loopback(store: &Handle, file: &Path, shop: &str) {
    let redirect = format!("http://127.0.0.1:{}/auth/callback", free_port());
    let mut child = start_auth(store, file, shop, &redirect);
    let (url, stderr_thread) = approval_address(&mut child);
    ureq::get(&approve(&url)).call().unwrap();
    let (output, text) = finish(child, stderr_thread);
    assert!(output.status.success(), "{text}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_merchant_approves_and_every_command_then_uses_and_renews_the_tokens() {
    let store = store(installed());
    let again = plan("auth-loopback-again");
    let plan = plan("auth-loopback");
    let file = app_file(&plan);
    let redirect = format!("http://127.0.0.1:{}/auth/callback", free_port());
    let mut child = start_auth(&store, &file, SHOP, &redirect);
    let (url, stderr_thread) = approval_address(&mut child);
    for expected in [
        &format!("client_id={CLIENT_ID}"),
        "scope=read_customers%2Cwrite_customers%2C",
        "&state=",
    ] {
        assert!(url.contains(expected), "{expected} in {url}");
    }
    let callback = approve(&url);
    assert!(callback.starts_with(&redirect), "{callback}");
    // The browser follows the redirect to marginwise's own listener.
    let page = ureq::get(&callback)
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert!(
        page.contains("marginwise has the store's approval"),
        "{page}"
    );
    let (output, text) = finish(child, stderr_thread);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{text}");
    assert!(stdout.contains(&format!("authorized: {SHOP}")), "{stdout}");
    let held = file_json(&file);
    let access = held["access_token"].as_str().unwrap().to_string();
    let refresh = held["refresh_token"].as_str().unwrap().to_string();
    for secret in [access.as_str(), refresh.as_str(), CLIENT_SECRET] {
        assert!(
            !stdout.contains(secret) && !text.contains(secret),
            "{secret}: {stdout}{text}"
        );
    }
    // The file kept the client id and secret, and gained the shop and expiries.
    assert_eq!(held["client_secret"], CLIENT_SECRET);
    assert_eq!(held["shop"], SHOP);
    assert!(held["access_token_expires_at"].is_string(), "{held}");
    assert!(held["refresh_token_expires_at"].is_string(), "{held}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let stats = store.stats();
    assert_eq!(
        (stats.tokens_granted, stats.tokens_refreshed),
        (1, 0),
        "{stats:?}"
    );

    // A command given the file uses the token as it is.
    let with_file = ["--credentials", file.to_str().unwrap()];
    let output = apply(&store, &plan, &with_file, &[]);
    assert_applied(&store, &output);
    let stats = store.stats();
    assert_eq!(
        (stats.tokens_granted, stats.unauthorized),
        (1, 0),
        "{stats:?}"
    );

    // An hour later the store refuses it: the next command renews it with the refresh token,
    // writes both new tokens to the file, and completes.
    store.expire_tokens();
    let output = apply(&store, &again, &with_file, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stats = store.stats();
    assert_eq!(
        (stats.tokens_refreshed, stats.unauthorized),
        (1, 1),
        "{stats:?}"
    );
    let renewed = file_json(&file);
    assert_ne!(renewed["access_token"].as_str(), Some(access.as_str()));
    let new_refresh = renewed["refresh_token"].as_str().unwrap();
    assert_ne!(new_refresh, refresh);
    assert_eq!(renewed["client_secret"], CLIENT_SECRET);
    // The renewed token was used, so the spent refresh token is gone, and the new one works.
    assert!(!store.refresh_token_valid(&refresh));
    assert!(store.refresh_token_valid(new_refresh));

    // `auth --check` says the tokens work, renewing them when they are due.
    let check = || {
        marginwise()
            .args(["--quiet", "auth", "--check", "--endpoint", &store.url()])
            .arg("--credentials")
            .arg(&file)
            .output()
            .unwrap()
    };
    let output = check();
    let said = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        said.starts_with(&format!("the token works for {}\n", store.url())),
        "{said}"
    );
    assert!(said.contains("refresh token expires at "), "{said}");
    store.expire_tokens();
    let output = check();
    let said = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(said.contains("(renewed with the refresh token)"), "{said}");
    assert_eq!(store.stats().tokens_refreshed, 2);
}

#[test]
fn a_pasted_callback_is_checked_before_its_code_is_used() {
    let redirect = "https://hooks.example.com/auth/callback";
    // (case, shop asked for, what is pasted, what the refusal says; empty: accepted)
    type Paste = fn(&str) -> String;
    let cases: [(&str, &str, Paste, &str); 4] = [
        (
            "tampered code",
            SHOP,
            |c| c.replace("code=", "code=x"),
            "hmac is not the app's signature",
        ),
        (
            "another run's state",
            SHOP,
            |c| {
                // Re-signed with the right secret, as if from another `auth` run's approval.
                let (base, query) = c.split_once('?').unwrap();
                let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
                    .filter(|(k, _)| k != "hmac")
                    .map(|(k, v)| {
                        let v = if k == "state" {
                            "0".repeat(32)
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                let borrowed: Vec<(&str, &str)> = pairs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let hmac = model_pipeline::admin::oauth::sign(&borrowed, CLIENT_SECRET);
                let query = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(&borrowed)
                    .append_pair("hmac", &hmac)
                    .finish();
                format!("{base}?{query}")
            },
            "state is not the one this run sent",
        ),
        (
            "another shop",
            "other-store.myshopify.com",
            |c| c.to_string(),
            "is for local-store.myshopify.com, not other-store.myshopify.com",
        ),
        ("good", SHOP, |c| c.to_string(), ""),
    ];
    for (case, shop, paste, refusal) in cases {
        let store = store(installed());
        let dir = scratch(&format!("auth-paste-{}", case.replace(' ', "-")));
        let file = app_file(&dir);
        let before = std::fs::read_to_string(&file).unwrap();
        let mut child = start_auth(&store, &file, shop, redirect);
        let (url, stderr_thread) = approval_address(&mut child);
        let callback = approve(&url);
        assert!(callback.starts_with(redirect), "{case}: {callback}");
        // Pasted the case's way three times: a refused address is asked for again, up to three.
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            writeln!(stdin).unwrap();
            for _ in 0..3 {
                writeln!(stdin, "  {}  ", paste(&callback)).unwrap();
            }
        }
        let (output, text) = finish(child, stderr_thread);
        assert!(text.contains("Paste that whole address"), "{case}: {text}");
        if refusal.is_empty() {
            assert!(output.status.success(), "{case}: {text}");
            assert!(file_json(&file)["refresh_token"].is_string(), "{case}");
        } else {
            assert_eq!(
                text.matches("paste the whole address again").count(),
                2,
                "{case}: {text}"
            );
            assert!(text.contains("(attempt 3)"), "{case}: {text}");
            assert_eq!(output.status.code(), Some(1), "{case}: {text}");
            assert!(text.contains(refusal), "{case}: `{refusal}` in {text}");
            assert_eq!(std::fs::read_to_string(&file).unwrap(), before, "{case}");
            assert_eq!(
                store.stats().tokens_granted,
                0,
                "{case}: the code was never sent"
            );
        }
        assert!(!text.contains(CLIENT_SECRET), "{case}: {text}");
    }
}

/// A mis-copied address costs nothing: the right one pasted next is taken.
#[test]
fn a_refused_paste_is_asked_for_again() {
    let store = store(installed());
    let dir = scratch("auth-paste-again");
    let file = app_file(&dir);
    let mut child = start_auth(
        &store,
        &file,
        SHOP,
        "https://hooks.example.com/auth/callback",
    );
    let (url, stderr_thread) = approval_address(&mut child);
    let callback = approve(&url);
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        let cut = &callback[..callback.len() - 4];
        writeln!(stdin, "{cut}").unwrap();
        writeln!(stdin, "{callback}").unwrap();
    }
    let (output, text) = finish(child, stderr_thread);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("that address was refused"), "{text}");
    assert_eq!(store.stats().tokens_granted, 1);
}

#[test]
fn a_refused_refresh_token_says_to_authorize_again_and_never_shows_the_token() {
    let store = store(installed());
    let plan = plan("auth-revoked");
    let file = plan.join("credentials.json");
    let revoked = "shprt_revoked_4417";
    std::fs::write(
        &file,
        serde_json::json!({
            "shop": SHOP,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "access_token": "shpat_expired_9921",
            "access_token_expires_at": "2026-01-01T00:00:00Z",
            "refresh_token": revoked,
        })
        .to_string(),
    )
    .unwrap();
    let before = std::fs::read_to_string(&file).unwrap();
    let output = apply(
        &store,
        &plan,
        &["--credentials", file.to_str().unwrap()],
        &[],
    );
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    for expected in [
        "refused the refresh token (HTTP 400",
        "invalid_grant",
        "run `marginwise auth` again",
    ] {
        assert!(text.contains(expected), "`{expected}` in {text}");
    }
    for secret in [revoked, "shpat_expired_9921", CLIENT_SECRET] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    // The expired token was never sent, and the file is as it was.
    let stats = store.stats();
    assert_eq!(
        (stats.graphql_requests, stats.unauthorized),
        (0, 0),
        "{stats:?}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
}

#[test]
fn two_commands_sharing_the_file_renew_the_token_once() {
    let store = store(installed());
    let first = plan("auth-shared-1");
    let second = plan("auth-shared-2");
    let file = app_file(&first);
    authorize_on_loopback(&store, &file, SHOP);
    store.expire_tokens();
    // Both are refused once; one renews under the file's lock, the other then takes the new
    // token from the file instead of spending the refresh token a second time.
    let runs: Vec<_> = [&first, &second]
        .into_iter()
        .map(|plan| {
            let (store_url, plan, file) = (store.url(), plan.clone(), file.clone());
            std::thread::spawn(move || {
                marginwise()
                    .args(["--quiet", "apply", "--plan"])
                    .arg(&plan)
                    .args([
                        "--endpoint",
                        &store_url,
                        "--jitter-seed",
                        "1",
                        "--credentials",
                    ])
                    .arg(&file)
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for run in runs {
        let output = run.join().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let stats = store.stats();
    assert_eq!(stats.tokens_refreshed, 1, "{stats:?}");
    assert_eq!(stats.grants_refused, 0, "{stats:?}");
}

/// A command whose token another command already renewed takes the renewed one from the file
/// when its own is refused, instead of spending the refresh token again (here the other command
/// renews while this one holds the old token, so the path is taken every time).
#[test]
fn a_client_takes_the_token_another_command_renewed() {
    use model_pipeline::admin::{AdminClient, ClientOptions, Credentials, Retry, ops};
    let store = store(installed());
    let plan = plan("auth-adopt");
    let file = app_file(&plan);
    authorize_on_loopback(&store, &file, SHOP);
    // This client holds the first token ...
    let credentials = Credentials::resolve_local(&store.url(), None, Some(&file)).unwrap();
    let mut client = AdminClient::new(credentials, ClientOptions::default());
    // ... which expires, and another command renews it into the file.
    store.expire_tokens();
    let output = apply(
        &store,
        &plan,
        &["--credentials", file.to_str().unwrap()],
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(store.stats().tokens_refreshed, 1);
    let variables = ops::read_metafields::Variables {
        ids: vec![customer_gid(1)],
        namespace: NAMESPACE.to_string(),
        customer_key: PROFILE_KEY.to_string(),
        variant_key: PROFILE_KEY.to_string(),
    };
    client
        .execute::<ops::ReadMetafields>("nodes", variables, Retry::Always)
        .unwrap();
    assert_eq!(client.token_refreshes, 0);
    let stats = store.stats();
    assert_eq!(
        (stats.tokens_refreshed, stats.grants_refused),
        (1, 0),
        "{stats:?}"
    );
}

/// A busy loopback port is said at once, before any approval address is shown (an approval
/// whose callback nobody hears would be wasted).
#[test]
fn a_busy_callback_port_is_refused_before_the_approval() {
    let store = store(installed());
    let dir = scratch("auth-busy");
    let file = app_file(&dir);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let child = start_auth(
        &store,
        &file,
        SHOP,
        &format!("http://127.0.0.1:{port}/auth/callback"),
    );
    let output = child.wait_with_output().unwrap();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("listening on 127.0.0.1:{port} for the callback")),
        "{text}"
    );
    assert!(!text.contains("/admin/oauth/authorize"), "{text}");
    drop(taken);
}

/// `auth --check` says how each kind of credentials gets its token.
#[test]
fn auth_check_says_how_the_token_is_got() {
    let store = store(installed());
    let dir = scratch("auth-check-kinds");
    let file = app_file(&dir);
    let check = |env: &[(&str, &str)]| {
        let mut command = marginwise();
        command
            .args(["--quiet", "auth", "--check", "--endpoint", &store.url()])
            .arg("--credentials")
            .arg(&file);
        for (name, value) in env {
            command.env(name, value);
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let said = check(&[]);
    assert!(said.contains("from the client credentials grant"), "{said}");
    std::fs::write(&file, format!(r#"{{"access_token": "{}"}}"#, store.token())).unwrap();
    let said = check(&[]);
    assert!(said.contains("a token given as it is"), "{said}");
}

/// The app on two stores: one of its organization (client id and secret), one outside it,
/// where the client credentials grant is refused and `marginwise auth` gets the tokens; then one
/// `webhooks --shops` process takes each store's redaction to that store only.
#[test]
fn two_stores_one_by_auth_share_one_webhooks_process() {
    let own = store(installed());
    let other = store(Some(AppCredentials {
        same_organization: false,
        shop: "other-store.myshopify.com".to_string(),
        ..AppCredentials::new(CLIENT_ID, CLIENT_SECRET)
    }));
    let (own_plan, other_plan) = (plan("two-stores-own"), plan("two-stores-other"));

    // Outside the organization the client credentials grant is refused, naming why.
    let output = apply(&other, &other_plan, &[], &client_env(CLIENT_SECRET));
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("only for stores owned by the app's own organization"),
        "{text}"
    );
    // `auth` gets that store's tokens; apply then works with the file.
    let other_file = app_file(&other_plan);
    authorize_on_loopback(&other, &other_file, "other-store");
    let with_file = ["--credentials", other_file.to_str().unwrap()];
    assert!(apply(&other, &other_plan, &with_file, &[]).status.success());
    let own_file = app_file(&own_plan);
    assert!(
        apply(
            &own,
            &own_plan,
            &["--credentials", own_file.to_str().unwrap()],
            &[]
        )
        .status
        .success()
    );

    // One webhooks process for both, each delivery to its own store.
    let dir = scratch("two-stores-webhooks");
    let shops = dir.join("shops.json");
    std::fs::write(
        &shops,
        serde_json::json!({"shops": [
            {"shop": "own-store", "endpoint": own.url(), "credentials": own_file, "plan": own_plan},
            {"endpoint": other.url(), "credentials": other_file, "plan": other_plan},
        ]})
        .to_string(),
    )
    .unwrap();
    let secret = model_pipeline::privacy::AppSecret::new(CLIENT_SECRET).unwrap();
    let redact = |shop: &str, customer: u64| {
        let body = format!(
            r#"{{"shop_id":1,"shop_domain":"{shop}","customer":{{"id":{customer}}},"orders_to_redact":[]}}"#
        );
        let payload = dir.join(format!("{shop}-{customer}.json"));
        std::fs::write(&payload, &body).unwrap();
        let output = marginwise()
            .args(["--quiet", "webhooks", "--replay"])
            .arg(&payload)
            .args(["--topic", "customers/redact", "--hmac"])
            .arg(model_pipeline::privacy::sign(&secret, body.as_bytes()))
            .arg("--shops")
            .arg(&shops)
            .env("SHOPIFY_CLIENT_SECRET", CLIENT_SECRET)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
    };
    let profile = |store: &Handle, customer: u64| {
        store
            .metafields()
            .into_iter()
            .any(|m| m.owner_id == customer_gid(customer) && m.key == PROFILE_KEY)
    };
    redact("other-store.myshopify.com", 5);
    assert!(!profile(&other, 5) && profile(&own, 5));
    redact("own-store.myshopify.com", 6);
    assert!(!profile(&own, 6) && profile(&other, 6));
}
