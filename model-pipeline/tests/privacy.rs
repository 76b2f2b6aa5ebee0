//! The privacy webhooks against the local stand-in of the Admin API: signatures, each compliance
//! topic, repeated deliveries, Admin API failures, the HTTP server over loopback and the CLI's
//! replay form.
//!
//! Every test starts from the same small shop: three customers with a profile each, applied
//! through the write-back (so the state database holds what a real run leaves), and the plan
//! folder beside it. Bounded: a handful of requests each, servers on 127.0.0.1 only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use local_store::{Burst, Config, Faults, Handle, LocalStore, StoreData};
use marginwise_engine::format::{NAMESPACE, PROFILE_KEY};
use marginwise_engine::{Profile, Segment};
use model_pipeline::admin::retry::Backoff;
use model_pipeline::admin::{AccessToken, AdminClient, ClientOptions, Credentials};
use model_pipeline::plan::{
    DELETIONS_FILE, METAFIELD_TYPE, MetafieldsSetInput, PLAN_FILE, customer_gid,
};
use model_pipeline::privacy::server::WebhookServer;
use model_pipeline::privacy::{
    AppSecret, Delivery, Handler, HandlerConfig, Outcome, SignatureError, sign,
    webhook_client_options,
};
use model_pipeline::sync::apply::{ApplyOptions, BatchHook, COMPARE_EXPONENT};
use model_pipeline::sync::state::{MetafieldKey, STATE_FILE, State};
use model_pipeline::sync::{self, Polling};

const SHOP: &str = "marginwise-test.myshopify.com";
const SECRET: &str = "test-app-secret";
const CUSTOMERS: u64 = 3;

struct Shop {
    store: Handle,
    plan: PathBuf,
    /// The profile applied to each customer, by customer number.
    profiles: Vec<String>,
}

impl Shop {
    fn state_file(&self) -> PathBuf {
        self.plan.join(STATE_FILE)
    }

    fn credentials(&self) -> Credentials {
        Credentials::for_local(&self.store.url(), AccessToken::new(self.store.token())).unwrap()
    }

    fn handler(&self) -> Handler {
        let config = HandlerConfig::new(AppSecret::new(SECRET).unwrap(), SHOP, &self.plan);
        Handler::new(
            config,
            AdminClient::new(self.credentials(), webhook_client_options()),
        )
    }

    /// The profile the store holds for customer `n`.
    fn stored_profile(&self, n: u64) -> Option<String> {
        self.store
            .metafields()
            .into_iter()
            .find(|m| m.owner_id == customer_gid(n) && m.key == PROFILE_KEY)
            .map(|m| m.value)
    }

    fn state_value(&self, n: u64) -> Option<String> {
        let state = State::open(&self.state_file(), &self.credentials().shop).unwrap();
        state
            .stored(&profile_key(n))
            .unwrap()
            .map(|stored| stored.value)
    }

    fn plan_text(&self, file: &str) -> String {
        std::fs::read_to_string(self.plan.join(file)).unwrap_or_default()
    }
}

fn profile_key(n: u64) -> MetafieldKey {
    MetafieldKey {
        owner_id: customer_gid(n),
        namespace: NAMESPACE.to_string(),
        key: PROFILE_KEY.to_string(),
    }
}

/// A shop of three customers with profiles applied, and an opted-out line for customer 1 in
/// `deletions.jsonl` (added after applying, as a later plan would carry it).
fn shop(name: &str) -> Shop {
    let shop = plan_shop(name, CUSTOMERS);
    let (mut client, options) = apply_client_and_options(&shop);
    let report = sync::apply_plan(&mut client, &shop.plan, None, &options).unwrap();
    assert_eq!(report.written, CUSTOMERS);
    std::fs::write(
        shop.plan.join(DELETIONS_FILE),
        format!(
            "{{\"ownerId\":\"{}\",\"namespace\":\"$app\",\"key\":\"profile\"}}\n",
            customer_gid(1)
        ),
    )
    .unwrap();
    for n in 1..=CUSTOMERS {
        assert_eq!(
            shop.stored_profile(n).as_ref(),
            Some(&shop.profiles[n as usize])
        );
        assert_eq!(
            shop.state_value(n).as_ref(),
            Some(&shop.profiles[n as usize])
        );
    }
    shop.store.reset_stats();
    shop
}

fn secret() -> AppSecret {
    AppSecret::new(SECRET).unwrap()
}

fn redact_body(n: u64) -> String {
    format!(
        r#"{{"shop_id":954889,"shop_domain":"{SHOP}","customer":{{"id":{n},"email":"someone@example.com","phone":"555-625-1199"}},"orders_to_redact":[299938,280263]}}"#
    )
}

fn data_request_body(n: u64, request: u64) -> String {
    format!(
        r#"{{"shop_id":954889,"shop_domain":"{SHOP}","orders_requested":[299938],"customer":{{"id":{n},"email":"someone@example.com","phone":"555-625-1199"}},"data_request":{{"id":{request}}}}}"#
    )
}

fn shop_redact_body(shop: &str) -> String {
    format!(r#"{{"shop_id":954889,"shop_domain":"{shop}"}}"#)
}

/// Delivers `body` as Shopify would: signed, with the topic and shop headers.
fn deliver(handler: &mut Handler, topic: &str, body: &str) -> Outcome {
    let hmac = sign(&secret(), body.as_bytes());
    handler.handle(&Delivery {
        topic: Some(topic),
        shop_domain: Some(SHOP),
        hmac: Some(&hmac),
        webhook_id: Some("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
        body: body.as_bytes(),
    })
}

#[test]
fn a_bad_or_missing_signature_is_refused_before_anything_is_done() {
    let shop = shop("signature");
    let mut handler = shop.handler();
    let body = redact_body(1);
    let good = sign(&secret(), body.as_bytes());
    // One byte changed: the payload now names customer 2, and still parses.
    let tampered = body.replace("\"id\":1,", "\"id\":2,");
    assert_eq!(tampered.len(), body.len());
    let wrong_secret = sign(&AppSecret::new("another-secret").unwrap(), body.as_bytes());
    let cases: [(&str, &str, Option<&str>, SignatureError); 4] = [
        ("missing", &body, None, SignatureError::Missing),
        ("not base64", &body, Some("%%%"), SignatureError::NotBase64),
        (
            "body changed",
            &tampered,
            Some(&good),
            SignatureError::Mismatch,
        ),
        (
            "another secret",
            &body,
            Some(&wrong_secret),
            SignatureError::Mismatch,
        ),
    ];
    for (case, body, hmac, expected) in cases {
        let outcome = handler.handle(&Delivery {
            topic: Some("customers/redact"),
            shop_domain: Some(SHOP),
            hmac,
            webhook_id: None,
            body: body.as_bytes(),
        });
        assert_eq!(outcome.status(), 401, "{case}: {outcome}");
        assert!(
            matches!(outcome, Outcome::Unauthorized(why) if why == expected),
            "{case}"
        );
    }
    // Nothing was done: no request reached the store, every profile and state row is there.
    assert_eq!(shop.store.stats().graphql_requests, 0);
    for n in 1..=CUSTOMERS {
        assert!(shop.stored_profile(n).is_some(), "customer {n}");
        assert!(shop.state_value(n).is_some(), "customer {n}");
    }
    assert!(shop.plan_text(PLAN_FILE).contains(&customer_gid(1)));
    // The same body with its own signature is accepted.
    let outcome = handler.handle(&Delivery {
        topic: Some("customers/redact"),
        shop_domain: Some(SHOP),
        hmac: Some(&good),
        webhook_id: None,
        body: body.as_bytes(),
    });
    assert_eq!(outcome.status(), 200, "{outcome}");
    assert_eq!(shop.stored_profile(1), None);
}

#[test]
fn customers_redact_removes_the_profile_state_rows_and_plan_lines_and_can_be_repeated() {
    let shop = shop("redact");
    let mut handler = shop.handler();
    let outcome = deliver(&mut handler, "customers/redact", &redact_body(1));
    assert_eq!(outcome.status(), 200, "{outcome}");
    let Outcome::Redacted(redacted) = &outcome else {
        panic!("{outcome}");
    };
    assert_eq!(redacted.customer_gid, customer_gid(1));
    assert!(redacted.metafield_deleted);
    assert_eq!(redacted.state_rows_removed, 1);
    assert_eq!(redacted.plan_lines_removed, 2);
    assert_eq!(redacted.orders_named, 2);
    assert_eq!(shop.stored_profile(1), None);
    assert_eq!(shop.state_value(1), None);
    assert!(!shop.plan_text(PLAN_FILE).contains(&customer_gid(1)));
    assert!(!shop.plan_text(DELETIONS_FILE).contains(&customer_gid(1)));
    // The log line says what was done, without the payload's personal data or the customer.
    let line = outcome.to_string();
    assert!(line.starts_with("redacted a customer"), "{line}");
    assert!(!line.contains("someone@example.com") && !line.contains("Customer/1"));
    // The other customers keep everything.
    for n in 2..=CUSTOMERS {
        assert_eq!(
            shop.stored_profile(n).as_ref(),
            Some(&shop.profiles[n as usize])
        );
        assert_eq!(
            shop.state_value(n).as_ref(),
            Some(&shop.profiles[n as usize])
        );
        assert!(shop.plan_text(PLAN_FILE).contains(&customer_gid(n)));
    }
    assert_eq!(shop.store.stats().deletes_applied, 1);

    // Shopify sends it again: answered 200, nothing more to remove.
    let again = deliver(&mut handler, "customers/redact", &redact_body(1));
    assert_eq!(again.status(), 200, "{again}");
    let Outcome::Redacted(redacted) = &again else {
        panic!("{again}");
    };
    assert!(!redacted.metafield_deleted);
    assert_eq!(
        (redacted.state_rows_removed, redacted.plan_lines_removed),
        (0, 0)
    );
    assert_eq!(shop.store.stats().deletes_applied, 1);
    assert_eq!(shop.stored_profile(2).as_ref(), Some(&shop.profiles[2]));

    // A signed payload without a customer is refused, and nothing is done.
    let requests = shop.store.stats().graphql_requests;
    let malformed = deliver(
        &mut handler,
        "customers/redact",
        &format!(r#"{{"shop_domain":"{SHOP}"}}"#),
    );
    assert_eq!(malformed.status(), 400, "{malformed}");
    assert_eq!(shop.store.stats().graphql_requests, requests);
}

#[test]
fn a_data_request_writes_what_the_store_the_state_and_the_plan_hold() {
    let shop = shop("data-request");
    let mut handler = shop.handler();
    let outcome = deliver(
        &mut handler,
        "customers/data_request",
        &data_request_body(2, 9999),
    );
    assert_eq!(outcome.status(), 200, "{outcome}");
    let Outcome::DataRequestWritten(written) = &outcome else {
        panic!("{outcome}");
    };
    assert!(written.profile_found);
    // The log line names the request and the folder, not the customer.
    let line = outcome.to_string();
    let folder = written.file.parent().unwrap().display().to_string();
    assert!(line.contains("9999") && line.contains(&folder), "{line}");
    assert!(
        !line.contains("customer-2") && !line.contains("Customer/2"),
        "{line}"
    );
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&written.file).unwrap()).unwrap();
    let profile = &shop.profiles[2];
    assert_eq!(document["customer_gid"], customer_gid(2));
    assert_eq!(document["data_request_id"], 9999);
    assert_eq!(document["profile_metafield"]["value"], profile.as_str());
    assert_eq!(
        document["profile_metafield"]["meaning"]["segment"],
        Segment::ALL[2].code()
    );
    assert_eq!(document["write_back_state"][0]["table"], "stored");
    assert_eq!(document["write_back_state"][0]["value"], profile.as_str());
    assert_eq!(document["plan"][0]["line"]["value"], profile.as_str());
    assert!(!document.to_string().contains("someone@example.com"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&written.file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "readable by others: {mode:o}");
    }
    // Sent again: the same file, written again, and no other.
    let again = deliver(
        &mut handler,
        "customers/data_request",
        &data_request_body(2, 9999),
    );
    assert!(matches!(&again, Outcome::DataRequestWritten(w) if w.file == written.file));
    let files = std::fs::read_dir(written.file.parent().unwrap())
        .unwrap()
        .count();
    assert_eq!(files, 1);
    // Asking changes nothing.
    assert_eq!(shop.stored_profile(2).as_ref(), Some(profile));
    assert_eq!(shop.store.stats().deletes_applied, 0);

    // A customer the pipeline knows nothing about gets a file that says so.
    let unknown = deliver(
        &mut handler,
        "customers/data_request",
        &data_request_body(42, 10000),
    );
    let Outcome::DataRequestWritten(written) = &unknown else {
        panic!("{unknown}");
    };
    assert!(!written.profile_found);
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&written.file).unwrap()).unwrap();
    assert!(document["profile_metafield"].is_null());
    assert_eq!(document["write_back_state"], serde_json::json!([]));
}

#[test]
fn shop_redact_removes_the_shops_state_and_files_and_refuses_another_shop() {
    let shop = shop("shop-redact");
    let mut handler = shop.handler();
    let written = deliver(
        &mut handler,
        "customers/data_request",
        &data_request_body(3, 1),
    );
    let Outcome::DataRequestWritten(written) = written else {
        panic!("{written}");
    };
    let requests = shop.store.stats().graphql_requests;
    // What `score` writes beside the plan, a redaction's leftover temporaries, a killed
    // `score`'s plan temporaries, and files the pipeline does not write (kept).
    let written_by_pipeline = [
        shop.plan.join("summary.json"),
        shop.plan.join("report.html"),
        shop.plan.join(format!(".{PLAN_FILE}.redacting")),
        shop.plan.join(format!(".{DELETIONS_FILE}.redacting")),
        shop.plan.join(format!(".{PLAN_FILE}.Xy12Ab.tmp")),
        shop.plan.join(format!(".{DELETIONS_FILE}.7kQ0zz.tmp")),
    ];
    for file in &written_by_pipeline {
        std::fs::write(file, "x").unwrap();
    }
    let unknown = shop.plan.join("notes.txt");
    std::fs::write(&unknown, "the merchant's").unwrap();
    let unknown_temporary = shop.plan.join(format!(".{PLAN_FILE}.notes"));
    std::fs::write(&unknown_temporary, "the merchant's").unwrap();

    // Signed, but for a shop this process does not serve: nothing is removed.
    let other = "someone-else.myshopify.com";
    let body = shop_redact_body(other);
    let hmac = sign(&secret(), body.as_bytes());
    let refused = handler.handle(&Delivery {
        topic: Some("shop/redact"),
        shop_domain: Some(other),
        hmac: Some(&hmac),
        webhook_id: None,
        body: body.as_bytes(),
    });
    assert_eq!(refused.status(), 422, "{refused}");
    assert!(shop.state_file().exists() && written.file.exists());

    let outcome = deliver(&mut handler, "shop/redact", &shop_redact_body(SHOP));
    assert_eq!(outcome.status(), 200, "{outcome}");
    let Outcome::ShopRedacted(removed) = &outcome else {
        panic!("{outcome}");
    };
    for file in [
        shop.state_file(),
        shop.plan.join(PLAN_FILE),
        shop.plan.join(DELETIONS_FILE),
        written.file.clone(),
    ] {
        assert!(!file.exists(), "{} is still there", file.display());
        assert!(removed.files_removed.contains(&file), "{}", file.display());
    }
    // The store is not asked for anything (the app's token is gone by then).
    assert_eq!(shop.store.stats().graphql_requests, requests);
    for file in &written_by_pipeline {
        assert!(!file.exists(), "{} is still there", file.display());
    }
    let data_requests = written.file.parent().unwrap();
    assert!(
        !data_requests.exists(),
        "the empty data-requests folder is still there"
    );
    assert!(
        unknown.exists() && unknown_temporary.exists(),
        "a file the pipeline does not write was removed"
    );
    // Files are counted in the log line, customer ids are not named.
    assert!(!outcome.to_string().contains("customer-3"), "{outcome}");

    let again = deliver(&mut handler, "shop/redact", &shop_redact_body(SHOP));
    assert!(
        matches!(&again, Outcome::ShopRedacted(r) if r.files_removed.is_empty()),
        "{again}"
    );
}

#[test]
fn an_admin_api_failure_answers_5xx_and_the_retry_completes_the_redaction() {
    let shop = shop("admin-failure");
    let mut handler = shop.handler();
    shop.store.set_faults(Faults {
        error_5xx: Some(Burst {
            every: 1,
            length: 1,
            writes_only: false,
            status: Some(503),
            delay_ms: None,
        }),
        ..Faults::default()
    });
    let failed = deliver(&mut handler, "customers/redact", &redact_body(2));
    assert!((500..600).contains(&failed.status()), "{failed}");
    assert!(matches!(failed, Outcome::Failed(_)));
    assert_eq!(shop.stored_profile(2).as_ref(), Some(&shop.profiles[2]));

    shop.store.set_faults(Faults::default());
    let retried = deliver(&mut handler, "customers/redact", &redact_body(2));
    assert_eq!(retried.status(), 200, "{retried}");
    assert_eq!(shop.stored_profile(2), None);
    assert_eq!(shop.state_value(2), None);
}

/// POSTs `body` to `url` with `headers`; returns the status.
fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut request = agent.post(url).header("Content-Type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send(body).unwrap().status().as_u16()
}

/// The webhook server on a free loopback port for `shop`, with the lines it logs.
fn serve(shop: &Shop) -> (WebhookServer, Arc<std::sync::Mutex<Vec<String>>>) {
    let log = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&log);
    let server = WebhookServer::start(
        "127.0.0.1:0",
        shop.handler(),
        Box::new(move |line| sink.lock().unwrap().push(line.to_string())),
    )
    .unwrap();
    (server, log)
}

#[test]
fn the_server_answers_401_200_and_5xx_over_loopback() {
    let shop = shop("server");
    let (server, log) = serve(&shop);
    let url = server.url();
    let body = redact_body(3);
    let hmac = sign(&secret(), body.as_bytes());
    let signed = |topic| {
        [
            ("X-Shopify-Topic", topic),
            ("X-Shopify-Shop-Domain", SHOP),
            ("X-Shopify-Hmac-Sha256", hmac.as_str()),
        ]
    };

    // Unsigned: refused, and the profile stays.
    let unsigned = [
        ("X-Shopify-Topic", "customers/redact"),
        ("X-Shopify-Shop-Domain", SHOP),
    ];
    assert_eq!(post(&url, &unsigned, body.as_bytes()), 401);
    assert!(shop.stored_profile(3).is_some());
    // A topic the handler does not act on: acknowledged, nothing done.
    assert_eq!(post(&url, &signed("orders/create"), body.as_bytes()), 200);
    assert!(shop.stored_profile(3).is_some());
    // The store fails: 5xx, so that Shopify sends it again.
    shop.store.set_faults(Faults {
        error_5xx: Some(Burst {
            every: 1,
            length: 1,
            writes_only: false,
            status: Some(502),
            delay_ms: None,
        }),
        ..Faults::default()
    });
    assert_eq!(
        post(&url, &signed("customers/redact"), body.as_bytes()),
        503
    );
    shop.store.set_faults(Faults::default());
    assert_eq!(
        post(&url, &signed("customers/redact"), body.as_bytes()),
        200
    );
    assert_eq!(shop.stored_profile(3), None);
    // Not the compliance path, and a body over the limit.
    assert_eq!(post(&format!("{url}x"), &signed("shop/redact"), b"{}"), 404);
    let huge = vec![b' '; model_pipeline::privacy::MAX_BODY_BYTES + 1];
    assert_eq!(post(&url, &signed("shop/redact"), &huge), 413);
    assert!(shop.state_file().exists());
    server.shutdown();

    let log = log.lock().unwrap();
    assert_eq!(log.len(), 6, "{log:#?}");
    assert!(log.iter().all(|line| !line.contains("someone@example.com")));
    // Only loopback addresses are served.
    assert!(WebhookServer::start("0.0.0.0:0", shop.handler(), Box::new(|_| {})).is_err());
}

#[test]
fn the_cli_replays_a_captured_delivery_only_with_its_signature() {
    let shop = shop("replay");
    let payload = shop.plan.parent().unwrap().join("redact.json");
    std::fs::write(&payload, redact_body(1)).unwrap();
    let hmac = sign(&secret(), redact_body(1).as_bytes());
    let replay = |hmac: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_marginwise"))
            .args(["--quiet", "webhooks", "--replay"])
            .arg(&payload)
            .args(["--topic", "customers/redact", "--hmac", hmac, "--plan"])
            .arg(&shop.plan)
            .args(["--endpoint", &shop.store.url(), "--shop", SHOP])
            .env("SHOPIFY_ACCESS_TOKEN", shop.store.token())
            .env("SHOPIFY_API_SECRET", SECRET)
            .output()
            .unwrap()
    };
    let forged = replay("AAAA");
    assert!(!forged.status.success());
    assert!(String::from_utf8_lossy(&forged.stderr).contains("401"));
    assert!(shop.stored_profile(1).is_some());

    let done = replay(&hmac);
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(
        stdout.contains("redacted a customer") && !stdout.contains("Customer/1"),
        "{stdout}"
    );
    assert_eq!(shop.stored_profile(1), None);
    assert_eq!(shop.state_value(1), None);
}

/// `--export DIR` on the command line reaches the handler: a replayed redaction rewrites the
/// export folder it names.
#[test]
fn the_cli_replay_rewrites_the_export_folders_it_is_given() {
    let shop = shop("replay-export");
    let export = shop.plan.parent().unwrap().join("export");
    write_export(&export);
    let payload = shop.plan.parent().unwrap().join("redact.json");
    std::fs::write(&payload, redact_body(1)).unwrap();
    let hmac = sign(&secret(), redact_body(1).as_bytes());
    let replay = |topic: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_marginwise"))
            .args(["--quiet", "webhooks", "--replay"])
            .arg(&payload)
            .args(["--topic", topic, "--hmac", &hmac, "--plan"])
            .arg(&shop.plan)
            .arg("--export")
            .arg(&export)
            .args(["--endpoint", &shop.store.url(), "--shop", SHOP])
            .env("SHOPIFY_ACCESS_TOKEN", shop.store.token())
            .env("SHOPIFY_API_SECRET", SECRET)
            .output()
            .unwrap()
    };
    // A mistyped topic is refused, not answered "ignored" with the redaction not done.
    let mistyped = replay("customer/redact");
    assert!(!mistyped.status.success());
    assert!(
        String::from_utf8_lossy(&mistyped.stderr)
            .contains("--topic \"customer/redact\" is not a topic marginwise acts on"),
        "{}",
        String::from_utf8_lossy(&mistyped.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(export.join(EXPORT_FILES[0])).unwrap(),
        export_text(EXPORT_FILES[0], true),
        "nothing was done"
    );
    let done = replay("customers/redact");
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    for file in EXPORT_FILES {
        assert_eq!(
            std::fs::read_to_string(export.join(file)).unwrap(),
            export_text(file, false),
            "{file}"
        );
    }
}

/// `marginwise webhooks` printed with `println!`, which panics ("failed printing to stdout:
/// Broken pipe") when the reader of its standard output has gone: like every other command, a
/// closed standard output is a clean stop (status 0, nothing on stderr), in both forms. The
/// replayed delivery is still handled (the line that reports it is what fails), and the server
/// stops instead of serving with nobody told where.
#[test]
fn the_webhooks_command_stops_cleanly_when_its_standard_output_is_closed() {
    let shop = shop("closed-stdout");
    let payload = shop.plan.parent().unwrap().join("redact.json");
    std::fs::write(&payload, redact_body(1)).unwrap();
    let hmac = sign(&secret(), redact_body(1).as_bytes());
    let run = |mode: &[&str]| {
        // The reading end is closed before the process starts, so its first line already fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        std::process::Command::new(env!("CARGO_BIN_EXE_marginwise"))
            .args(["--quiet", "webhooks"])
            .args(mode)
            .arg("--plan")
            .arg(&shop.plan)
            .args(["--endpoint", &shop.store.url(), "--shop", SHOP])
            .env("SHOPIFY_ACCESS_TOKEN", shop.store.token())
            .env("SHOPIFY_API_SECRET", SECRET)
            .stdout(writer)
            .output()
            .unwrap()
    };
    let replayed = run(&[
        "--replay",
        payload.to_str().unwrap(),
        "--topic",
        "customers/redact",
        "--hmac",
        &hmac,
    ]);
    let listened = run(&["--listen", "127.0.0.1:0"]);
    for (form, output) in [("--replay", replayed), ("--listen", listened)] {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{form}: {:?}: {stderr}",
            output.status
        );
        assert_eq!(stderr, "", "{form}");
    }
    assert_eq!(shop.stored_profile(1), None);
}

/// `customers/redact` also removes the customer's data-request files, of every request, and
/// those only.
#[test]
fn customers_redact_removes_the_customers_data_request_files() {
    let shop = shop("redact-data-requests");
    let mut handler = shop.handler();
    let mut files = Vec::new();
    for (n, request) in [(1, 5), (1, 6), (2, 7), (12, 8)] {
        let outcome = deliver(
            &mut handler,
            "customers/data_request",
            &data_request_body(n, request),
        );
        let Outcome::DataRequestWritten(written) = outcome else {
            panic!("{outcome}");
        };
        files.push(written.file);
    }
    // An interrupted write leaves a temporary beside them.
    let temporary = files[0].with_extension("json.writing");
    std::fs::write(&temporary, "{}").unwrap();
    let outcome = deliver(&mut handler, "customers/redact", &redact_body(1));
    let Outcome::Redacted(redacted) = &outcome else {
        panic!("{outcome}");
    };
    assert_eq!(redacted.data_request_files_removed, 3, "{outcome}");
    assert!(!files[0].exists() && !files[1].exists() && !temporary.exists());
    // Customer 2's and customer 12's stay (12 starts with 1).
    assert!(files[2].exists() && files[3].exists());
}

/// After a redaction the customer's profile is not left in the state database's file (SQLite
/// keeps deleted rows in free pages unless `secure_delete` is on), and their id only in the
/// suppression list.
#[test]
fn a_redacted_customer_leaves_no_bytes_in_the_state_database_file() {
    let shop = shop("secure-delete");
    let file_bytes = || {
        let mut bytes = std::fs::read(shop.state_file()).unwrap();
        for suffix in ["-wal", "-journal"] {
            let mut name = shop.state_file().into_os_string();
            name.push(suffix);
            bytes.extend(std::fs::read(PathBuf::from(name)).unwrap_or_default());
        }
        bytes
    };
    let contains = |haystack: &[u8], needle: &str| {
        haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    };
    let gid = customer_gid(1);
    let before = file_bytes();
    assert!(contains(&before, &shop.profiles[1]));
    let mut handler = shop.handler();
    let outcome = deliver(&mut handler, "customers/redact", &redact_body(1));
    assert_eq!(outcome.status(), 200, "{outcome}");
    drop(handler);
    let after = file_bytes();
    assert!(
        !contains(&after, &shop.profiles[1]),
        "the profile is still in the file"
    );
    // The GID stays, on purpose, as the suppression list's only entry (ids only, so that `apply`
    // never writes the profile back); no other table names the customer.
    let connection = rusqlite::Connection::open(shop.state_file()).unwrap();
    for (table, holds) in model_pipeline::privacy::local::STATE_TABLES {
        if holds == model_pipeline::privacy::local::Holds::Nothing {
            continue;
        }
        let rows: i64 = connection
            .query_row(
                &format!("SELECT COUNT(*) FROM {table} WHERE owner_id = ?1"),
                [&gid],
                |r| r.get(0),
            )
            .unwrap();
        let expected = i64::from(holds == model_pipeline::privacy::local::Holds::RedactedIds);
        assert_eq!(rows, expected, "{table}");
    }
    // The others are still there.
    assert!(contains(&after, &shop.profiles[2]));
}

/// A panicking server thread (here its log) makes `wait` an error instead of a clean stop.
#[test]
fn a_panicking_server_thread_is_an_error() {
    let shop = shop("server-panic");
    let server = WebhookServer::start(
        "127.0.0.1:0",
        shop.handler(),
        Box::new(|_| panic!("the log failed")),
    )
    .unwrap();
    let url = server.url();
    // The request is dropped unanswered when the thread panics.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let _ = agent.get(&format!("{url}x")).call();
    assert!(server.wait().is_err());
}

/// With its standard error closed, `marginwise webhooks --listen` keeps serving: its log line
/// must not panic the server thread.
#[test]
fn the_server_keeps_serving_when_its_standard_error_is_closed() {
    use std::io::BufRead;
    let shop = shop("closed-stderr");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_marginwise"))
        .args(["webhooks", "--listen", "127.0.0.1:0", "--plan"])
        .arg(&shop.plan)
        .args(["--endpoint", &shop.store.url(), "--shop", SHOP])
        .env("SHOPIFY_ACCESS_TOKEN", shop.store.token())
        .env("SHOPIFY_API_SECRET", SECRET)
        .stdout(std::process::Stdio::piped())
        .stderr(writer)
        .spawn()
        .unwrap();
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap();
    let _ = std::io::BufReader::new(stdout).read_line(&mut line);
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://127.0.0.1:"))
        .map(str::to_string);
    let statuses: Vec<Option<u16>> = (0..2)
        .map(|_| {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(5)))
                .build()
                .into();
            let url = url.as_deref()?;
            agent
                .get(&format!("{url}x"))
                .call()
                .ok()
                .map(|r| r.status().as_u16())
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(url.is_some(), "{line}");
    assert_eq!(statuses, [Some(404), Some(404)]);
    assert!(running, "the server stopped");
}

/// A fake Admin API on loopback that answers every request 429 with `retry_after`, for at most
/// 30 requests or 20 seconds.
fn throttling_store(retry_after: &'static str) -> (String, std::thread::JoinHandle<u32>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}/graphql.json", server.server_addr());
    let thread = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let mut answered = 0;
        while answered < 30 && started.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(100)) {
                answered += 1;
                let header = tiny_http::Header::from_bytes("Retry-After", retry_after).unwrap();
                let _ = request.respond(
                    tiny_http::Response::from_string("")
                        .with_status_code(429)
                        .with_header(header),
                );
            }
        }
        answered
    });
    (url, thread)
}

/// A throttling Admin API cannot hold a delivery past Shopify's 5 seconds: the answer is a 503
/// within the webhook deadline, and a `Retry-After` that ends past it gives up at once.
#[test]
fn a_throttling_admin_api_is_answered_503_within_five_seconds() {
    for (retry_after, within) in [("1", 4_500), ("30", 1_000)] {
        let (url, store) = throttling_store(retry_after);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("privacy")
            .join(format!("throttled-{retry_after}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = HandlerConfig::new(secret(), SHOP, &dir);
        let credentials = Credentials::for_local(&url, AccessToken::new("t")).unwrap();
        let mut handler = Handler::new(
            config,
            AdminClient::new(credentials, webhook_client_options()),
        );
        let started = std::time::Instant::now();
        let outcome = deliver(&mut handler, "customers/redact", &redact_body(1));
        let elapsed = started.elapsed();
        drop(handler);
        assert_eq!(outcome.status(), 503, "{outcome}");
        assert!(
            elapsed < Duration::from_millis(within),
            "Retry-After {retry_after}: answered after {elapsed:?}"
        );
        let _ = store.join();
    }
}

/// A signed but malformed payload is refused with the place and the expected type, never the
/// value found there (it may be the customer's email).
#[test]
fn a_malformed_payload_is_reported_without_its_values() {
    let shop = shop("malformed");
    let mut handler = shop.handler();
    for (body, path) in [
        (
            format!(r#"{{"shop_domain":"{SHOP}","customer":"alice@example.com"}}"#),
            "customer",
        ),
        (
            format!(
                r#"{{"shop_domain":"{SHOP}","customer":{{"id":1}},"orders_to_redact":"alice@example.com"}}"#
            ),
            "orders_to_redact",
        ),
        (
            r#"{"shop_domain":["alice@example.com"]}"#.to_string(),
            "shop_domain",
        ),
    ] {
        let outcome = deliver(&mut handler, "customers/redact", &body);
        assert_eq!(outcome.status(), 400, "{outcome}");
        let line = outcome.to_string();
        assert!(!line.contains("alice"), "{line}");
        assert!(
            line.contains(&format!("`{path}`")) && line.contains("expected"),
            "{line}"
        );
    }
    let outcome = deliver(
        &mut handler,
        "shop/redact",
        r#"{"shop_domain":"alice@example.com""#,
    );
    assert_eq!(outcome.status(), 400, "{outcome}");
    assert!(!outcome.to_string().contains("alice"), "{outcome}");
    assert!(shop.stored_profile(1).is_some());
}

/// The plan line `score` writes for customer `n` of a shop of `customers` (see [`plan_shop`]).
fn plan_line(n: u64) -> (String, String) {
    let value = Profile {
        segment: Segment::ALL[n as usize % Segment::ALL.len()],
        clv_minor: 12_345 * n as i64,
        churn_bps: 1_000 * (n % 9 + 1) as i64,
        expected_orders_12m_milli: 1_500,
        discount_share_bps: 2_500,
        p_alive_bps: 9_000,
    }
    .encode();
    let record = MetafieldsSetInput {
        owner_id: customer_gid(n),
        namespace: NAMESPACE.to_string(),
        key: PROFILE_KEY.to_string(),
        kind: METAFIELD_TYPE.to_string(),
        value: value.clone(),
    };
    (serde_json::to_string(&record).unwrap() + "\n", value)
}

/// A shop of `customers` customers and a plan with a profile for each, not applied yet.
fn plan_shop(name: &str, customers: u64) -> Shop {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("privacy")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let plan = dir.join("plan");
    std::fs::create_dir_all(&plan).unwrap();
    let seed: String = (1..=customers)
        .map(|n| format!("{{\"id\":\"{}\"}}\n", customer_gid(n)))
        .collect();
    let data = StoreData::from_jsonl(&[("customers.jsonl", &seed)]).unwrap();
    let store = LocalStore::start(Config {
        data: Some(Arc::new(data)),
        restore_rate: 10_000.0,
        ..Config::default()
    })
    .unwrap();
    let mut lines = String::new();
    let mut profiles = vec![String::new()];
    for n in 1..=customers {
        let (line, value) = plan_line(n);
        lines.push_str(&line);
        profiles.push(value);
    }
    std::fs::write(plan.join(PLAN_FILE), lines).unwrap();
    Shop {
        store,
        plan,
        profiles,
    }
}

fn apply_client_and_options(shop: &Shop) -> (AdminClient, ApplyOptions) {
    let client = AdminClient::new(
        shop.credentials(),
        ClientOptions {
            backoff: Backoff::new(Duration::from_millis(5), Duration::from_millis(50), 5, 1),
            ..ClientOptions::default()
        },
    );
    let mut options = ApplyOptions::new(&shop.plan, COMPARE_EXPONENT);
    options.polling = Polling {
        first: Duration::from_millis(10),
        max: Duration::from_millis(50),
        timeout: Duration::from_secs(30),
    };
    (client, options)
}

fn writes_to(shop: &Shop, n: u64) -> u64 {
    shop.store
        .write_counts()
        .into_iter()
        .filter(|w| w.owner_id == customer_gid(n))
        .map(|w| w.writes)
        .sum()
}

/// A `score` of an old export puts a redacted customer's plan line back: neither the next
/// `apply` in batches nor one through a bulk mutation writes it, each counts it, and the
/// suppression list is still there after the state database was closed and reopened.
#[test]
fn a_redacted_customers_plan_line_brought_back_is_not_written_and_is_counted() {
    let shop = shop("suppressed-rescore");
    let outcome = deliver(&mut shop.handler(), "customers/redact", &redact_body(1));
    assert_eq!(outcome.status(), 200, "{outcome}");
    assert_eq!(shop.stored_profile(1), None);
    // The list survives reopening (the handler's connection is closed).
    {
        let state = State::open(&shop.state_file(), &shop.credentials().shop).unwrap();
        assert!(state.is_redacted(&customer_gid(1)).unwrap());
        assert!(!state.is_redacted(&customer_gid(2)).unwrap());
    }
    // The old export scored again: customer 1's line is back, beside the others.
    let (line, _) = plan_line(1);
    let mut plan = shop.plan_text(PLAN_FILE);
    plan.push_str(&line);
    std::fs::write(shop.plan.join(PLAN_FILE), plan).unwrap();
    std::fs::remove_file(shop.plan.join(DELETIONS_FILE)).unwrap();
    shop.store.reset_stats();
    let (mut client, mut options) = apply_client_and_options(&shop);
    // In `metafieldsSet` batches, then through a bulk mutation (every pending value goes bulk).
    for bulk_threshold in [usize::MAX, 1] {
        options.bulk_threshold = bulk_threshold;
        let report = sync::apply_plan(&mut client, &shop.plan, None, &options).unwrap();
        assert_eq!(report.changed, 1, "{bulk_threshold}: {report:?}");
        assert_eq!(report.redacted_not_written, 1, "{bulk_threshold}");
        assert_eq!(report.written, 0, "{bulk_threshold}");
        assert_eq!(report.bulk_operations, 0, "{bulk_threshold}");
        assert!(
            sync::report_text(&report).contains("1 values of redacted customers not written"),
            "{}",
            sync::report_text(&report)
        );
        assert_eq!(shop.stored_profile(1), None, "{bulk_threshold}");
        assert_eq!(shop.state_value(1), None, "{bulk_threshold}");
    }
    assert_eq!(writes_to(&shop, 1), 0);
    assert_eq!(shop.store.stats().write_calls, 0);
    // Redacting again changes nothing and keeps the customer on the list.
    let again = deliver(&mut shop.handler(), "customers/redact", &redact_body(1));
    assert_eq!(again.status(), 200, "{again}");
    let state = State::open(&shop.state_file(), &shop.credentials().shop).unwrap();
    assert!(state.is_redacted(&customer_gid(1)).unwrap());
}

/// A redaction recorded while a batch holding the customer is in flight (journaled, not answered
/// yet): the webhook deletes the metafield before the batch lands, so the value would be back in
/// the store. The run that sent it deletes it again, and keeps nothing of it.
#[test]
fn a_value_in_flight_during_a_redaction_is_deleted_again_after_it_lands() {
    const CUSTOMERS: u64 = 30;
    let shop = Arc::new(plan_shop("suppressed-in-flight", CUSTOMERS));
    let (mut client, mut options) = apply_client_and_options(&shop);
    let handler = Arc::new(std::sync::Mutex::new(shop.handler()));
    let outcomes = Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let (shop, handler, outcomes) = (shop.clone(), handler.clone(), outcomes.clone());
        options.batch_in_flight = Some(BatchHook(Arc::new(move |started| {
            if started == 1 {
                // Customer 10 is in the first batch, journaled and not sent yet.
                assert_eq!(writes_to(&shop, 10), 0);
                let mut handler = handler.lock().unwrap();
                let outcome = deliver(&mut handler, "customers/redact", &redact_body(10));
                outcomes.lock().unwrap().push(outcome.status());
            }
        })));
    }
    let report = sync::apply_plan(&mut client, &shop.plan, None, &options).unwrap();
    assert_eq!(*outcomes.lock().unwrap(), [200]);
    // The batch landed whole (its value of customer 10 included), then that value was deleted.
    assert_eq!(writes_to(&shop, 10), 1);
    assert_eq!(report.redacted_purged, 1, "{report:?}");
    assert!(
        sync::report_text(&report)
            .contains("1 values of redacted customers that landed after the redaction deleted"),
        "{}",
        sync::report_text(&report)
    );
    assert_eq!(shop.stored_profile(10), None);
    assert_eq!(shop.state_value(10), None);
    for n in [1, 9, 11, 30] {
        assert_eq!(
            shop.stored_profile(n).as_ref(),
            Some(&shop.profiles[n as usize]),
            "customer {n}"
        );
    }
    // Nothing is left to purge: the next run sends no delete.
    let state = State::open(&shop.state_file(), &shop.credentials().shop).unwrap();
    assert!(state.purge_pending().unwrap().is_empty());
    drop(state);
    shop.store.reset_stats();
    options.batch_in_flight = None;
    let again = sync::apply_plan(&mut client, &shop.plan, None, &options).unwrap();
    assert_eq!((again.redacted_purged, again.written), (0, 0), "{again:?}");
    assert_eq!(shop.store.stats().deletes_applied, 0);
}

/// A redaction recorded while a bulk mutation holding the customer is still running (the run that
/// started it gave up waiting): the next run waits for the operation, and only then deletes the
/// value it landed; a run whose wait times out again stops with its journal kept instead of
/// taking the operation for gone.
#[test]
fn a_value_a_running_bulk_operation_lands_after_a_redaction_is_deleted_again() {
    const CUSTOMERS: u64 = 30;
    let shop = Arc::new(plan_shop("suppressed-bulk-running", CUSTOMERS));
    let (mut client, mut options) = apply_client_and_options(&shop);
    options.bulk_threshold = 1;
    options.polling.timeout = Duration::from_millis(300);
    shop.store.set_bulk_hold(local_store::BulkHold::Running);
    let first = sync::apply_plan(&mut client, &shop.plan, None, &options).unwrap_err();
    assert!(first.to_string().contains("still running"), "{first}");
    let outcome = deliver(&mut shop.handler(), "customers/redact", &redact_body(10));
    assert_eq!(outcome.status(), 200, "{outcome}");
    // Still running: the run stops and keeps the journal (nothing is taken for gone).
    let second = sync::apply_plan(&mut client, &shop.plan, None, &options).unwrap_err();
    assert!(second.to_string().contains("still running"), "{second}");
    // The operation finishes while the next run waits for it.
    let store = shop.clone();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        store.store.set_bulk_hold(local_store::BulkHold::None);
    });
    options.polling.timeout = Duration::from_secs(30);
    let third = sync::apply_plan(&mut client, &shop.plan, None, &options).unwrap();
    release.join().unwrap();
    assert_eq!(
        writes_to(&shop, 10),
        1,
        "the bulk operation landed the value"
    );
    assert_eq!(third.redacted_purged, 1, "{third:?}");
    assert_eq!(shop.stored_profile(10), None);
    assert_eq!(shop.state_value(10), None);
    for n in [1, 9, 11, 30] {
        assert_eq!(
            shop.stored_profile(n).as_ref(),
            Some(&shop.profiles[n as usize]),
            "customer {n}"
        );
    }
    let state = State::open(&shop.state_file(), &shop.credentials().shop).unwrap();
    assert!(state.purge_pending().unwrap().is_empty());
    assert!(state.in_flight().unwrap().is_empty());
}

/// A local step that fails (here an export folder whose `customers.jsonl` cannot be read) does
/// not keep the store's copy alive: the profile metafield is deleted, and the delivery answers
/// 5xx so Shopify's retry does the local part again.
#[test]
fn a_failing_local_step_still_deletes_the_profile_in_the_store() {
    let shop = shop("redact-local-failure");
    let export = shop.plan.parent().unwrap().join("broken-export");
    std::fs::create_dir_all(export.join("customers.jsonl")).unwrap();
    let mut handler = export_handler(&shop, std::slice::from_ref(&export));
    let outcome = deliver(&mut handler, "customers/redact", &redact_body(1));
    assert_eq!(outcome.status(), 500, "{outcome}");
    assert_eq!(shop.stored_profile(1), None);
    assert_eq!(shop.state_value(1), None);
    assert_eq!(shop.stored_profile(2).as_ref(), Some(&shop.profiles[2]));
}

/// A redaction that arrives before any `apply` (no state database yet) still records the customer:
/// the state database is created for the suppression list, and the first `apply` of a plan that
/// holds the customer writes every other profile and not theirs.
#[test]
fn a_redaction_before_the_first_apply_still_keeps_the_customer_out() {
    let shop = plan_shop("suppressed-before-apply", 3);
    assert!(!shop.state_file().exists());
    let outcome = deliver(&mut shop.handler(), "customers/redact", &redact_body(2));
    assert_eq!(outcome.status(), 200, "{outcome}");
    let Outcome::Redacted(redacted) = &outcome else {
        panic!("{outcome}");
    };
    assert_eq!(redacted.state_rows_removed, 0);
    assert_eq!(redacted.plan_lines_removed, 1);
    // The export still holds the customer, so a new `score` brings the plan line back.
    let (line, _) = plan_line(2);
    let mut plan = shop.plan_text(PLAN_FILE);
    plan.push_str(&line);
    std::fs::write(shop.plan.join(PLAN_FILE), plan).unwrap();
    let (mut client, options) = apply_client_and_options(&shop);
    let report = sync::apply_plan(&mut client, &shop.plan, None, &options).unwrap();
    assert_eq!(report.written, 2, "{report:?}");
    assert_eq!(report.redacted_not_written, 1, "{report:?}");
    assert_eq!(shop.stored_profile(2), None);
    assert_eq!(writes_to(&shop, 2), 0);
    for n in [1, 3] {
        assert_eq!(
            shop.stored_profile(n).as_ref(),
            Some(&shop.profiles[n as usize])
        );
    }
}

/// An `apply` that started before a redaction (its plan read, customer 10's value already
/// written in the first batch, customer 40's still to come in the second) sends no value of a
/// redacted customer in any batch after the redaction was recorded. The redaction is delivered
/// between the first and the second batch through the test hook, so the interleaving is fixed.
#[test]
fn an_apply_running_during_a_redaction_writes_nothing_of_the_customer_afterwards() {
    const CUSTOMERS: u64 = 60;
    let shop = Arc::new(plan_shop("suppressed-concurrent", CUSTOMERS));
    let (mut client, mut options) = apply_client_and_options(&shop);
    let handler = Arc::new(std::sync::Mutex::new(shop.handler()));
    let outcomes = Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let (shop, handler, outcomes) = (shop.clone(), handler.clone(), outcomes.clone());
        options.before_batch = Some(BatchHook(Arc::new(move |started| {
            if started == 1 {
                // Customer 10 was written by the first batch; customer 40 is in the second.
                assert_eq!(writes_to(&shop, 10), 1);
                assert_eq!(writes_to(&shop, 40), 0);
                let mut handler = handler.lock().unwrap();
                for n in [10, 40] {
                    let outcome = deliver(&mut handler, "customers/redact", &redact_body(n));
                    outcomes.lock().unwrap().push(outcome.status());
                }
            }
        })));
    }
    let report = sync::apply_plan(&mut client, &shop.plan, None, &options).unwrap();
    assert_eq!(*outcomes.lock().unwrap(), [200, 200]);
    assert_eq!(report.changed, CUSTOMERS);
    // Customer 10 was in a batch sent before the redaction; only customer 40 was left out.
    assert_eq!(report.redacted_not_written, 1, "{report:?}");
    assert_eq!(report.written, CUSTOMERS - 1);
    assert_eq!(writes_to(&shop, 40), 0);
    assert_eq!(writes_to(&shop, 10), 1);
    for n in [10, 40] {
        assert_eq!(shop.stored_profile(n), None, "customer {n}");
        assert_eq!(shop.state_value(n), None, "customer {n}");
    }
    for n in [1, 11, 39, 41, 60] {
        assert_eq!(
            shop.stored_profile(n).as_ref(),
            Some(&shop.profiles[n as usize]),
            "customer {n}"
        );
    }
    // The plan no longer names them; a run with the plan as the apply had it in memory (the
    // lines put back) writes nothing of theirs either.
    assert!(
        !shop
            .plan_text(PLAN_FILE)
            .contains(&format!("{}\"", customer_gid(40)))
    );
    options.before_batch = None;
    let mut plan = shop.plan_text(PLAN_FILE);
    plan.push_str(&plan_line(10).0);
    plan.push_str(&plan_line(40).0);
    std::fs::write(shop.plan.join(PLAN_FILE), plan).unwrap();
    let report = sync::apply_plan(&mut client, &shop.plan, None, &options).unwrap();
    assert_eq!((report.redacted_not_written, report.written), (2, 0));
    assert_eq!(writes_to(&shop, 10) + writes_to(&shop, 40), 1);
}

/// An order line of `orders.jsonl` as the bulk export writes it (slashes escaped), of customer
/// `customer` (a guest order without).
fn export_order(id: u64, customer: Option<u64>) -> String {
    let customer = customer.map_or_else(
        || "null".to_string(),
        |n| format!(r#"{{"id":"gid:\/\/shopify\/Customer\/{n}"}}"#),
    );
    format!(
        r#"{{"id":"gid:\/\/shopify\/Order\/{id}","createdAt":"2024-01-02T10:00:00Z","processedAt":"2024-01-02T10:00:00Z","cancelledAt":null,"test":false,"currencyCode":"USD","customer":{customer}}}"#
    )
}

/// A line item of order `order`, a line of its own pointing at the order through `__parentId`.
fn export_line_item(id: u64, order: u64) -> String {
    format!(
        r#"{{"id":"gid:\/\/shopify\/LineItem\/{id}","quantity":1,"variant":{{"id":"gid:\/\/shopify\/ProductVariant\/11"}},"product":{{"id":"gid:\/\/shopify\/Product\/10"}},"originalUnitPriceSet":{{"shopMoney":{{"amount":"20.00","currencyCode":"USD"}}}},"discountAllocations":[],"__parentId":"gid:\/\/shopify\/Order\/{order}"}}"#
    )
}

fn export_customer(n: u64) -> String {
    format!(
        r#"{{"id":"gid:\/\/shopify\/Customer\/{n}","createdAt":"2024-01-02T09:00:00Z","numberOfOrders":"2","amountSpent":{{"amount":"40.00","currencyCode":"USD"}},"tags":[],"dataSaleOptOut":false}}"#
    )
}

/// The lines of a small export, each with its ending, and whether it is customer 1's as
/// `redact_body(1)` and `data_request_body(1, _)` see it (order 299938 is named by both).
/// Around them: customer 12 (whose GID starts with customer 1's), a guest order, a line with a
/// CRLF ending, a last line without a newline, and two lines that cannot be read, one of them an
/// order whose line item follows it.
fn export_lines() -> Vec<(&'static str, String, bool)> {
    let line = |file, text: String, ending: &str, theirs| (file, text + ending, theirs);
    vec![
        line("customers.jsonl", export_customer(2), "\n", false),
        line("customers.jsonl", export_customer(1), "\n", true),
        line(
            "customers.jsonl",
            r#"{"id":"gid:\/\/shopify\/Customer\/4","createdAt":"#.to_string(),
            "\n",
            false,
        ),
        line("customers.jsonl", export_customer(12), "\r\n", false),
        line("customers.jsonl", export_customer(3), "", false),
        line("orders.jsonl", export_order(100, Some(1)), "\n", true),
        line("orders.jsonl", export_line_item(1, 100), "\n", true),
        line("orders.jsonl", export_line_item(2, 100), "\n", true),
        line("orders.jsonl", export_order(101, Some(2)), "\n", false),
        line("orders.jsonl", export_line_item(3, 101), "\n", false),
        line("orders.jsonl", export_order(102, Some(12)), "\n", false),
        line("orders.jsonl", export_line_item(4, 102), "\n", false),
        line("orders.jsonl", export_order(103, None), "\n", false),
        line("orders.jsonl", export_line_item(5, 103), "\n", false),
        line("orders.jsonl", export_order(104, Some(1)), "\n", true),
        line("orders.jsonl", export_line_item(6, 104), "\n", true),
        line("orders.jsonl", export_order(299938, None), "\n", true),
        line("orders.jsonl", export_line_item(7, 299938), "\n", true),
        line(
            "orders.jsonl",
            export_order(105, Some(1)).replace(r#""gid:\/\/shopify\/Customer\/1""#, "17"),
            "\n",
            false,
        ),
        line("orders.jsonl", export_line_item(8, 105), "\n", false),
        line("products.jsonl", r#"{"id":"gid:\/\/shopify\/Product\/10"}"#.to_string(), "\n", false),
        line(
            "products.jsonl",
            r#"{"id":"gid:\/\/shopify\/ProductVariant\/11","price":"20.00","inventoryItem":{"unitCost":{"amount":"8.00","currencyCode":"USD"}},"__parentId":"gid:\/\/shopify\/Product\/10"}"#.to_string(),
            "\n",
            false,
        ),
    ]
}

const EXPORT_FILES: [&str; 3] = ["customers.jsonl", "products.jsonl", "orders.jsonl"];

/// The text of `file` in an export of [`export_lines`], with customer 1's lines or without.
fn export_text(file: &str, with_customer_1: bool) -> String {
    export_lines()
        .into_iter()
        .filter(|(f, _, theirs)| *f == file && (with_customer_1 || !theirs))
        .map(|(_, text, _)| text)
        .collect()
}

/// Writes the export of [`export_lines`] into `dir`, as `export --out dir` leaves it.
fn write_export(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for file in EXPORT_FILES {
        std::fs::write(dir.join(file), export_text(file, true)).unwrap();
    }
}

fn export_handler(shop: &Shop, exports: &[PathBuf]) -> Handler {
    let mut config = HandlerConfig::new(secret(), SHOP, &shop.plan);
    config.export_dirs = exports.to_vec();
    Handler::new(
        config,
        AdminClient::new(shop.credentials(), webhook_client_options()),
    )
}

/// What tells a rewritten file from one left alone: the rename of a rewrite gives it another
/// inode, whatever the clock's resolution.
#[cfg(unix)]
fn file_identity(file: &Path) -> (u64, std::time::SystemTime) {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(file).unwrap();
    (metadata.ino(), metadata.modified().unwrap())
}

#[cfg(not(unix))]
fn file_identity(file: &Path) -> (u64, std::time::SystemTime) {
    (0, std::fs::metadata(file).unwrap().modified().unwrap())
}

/// `customers/redact` with export folders given: customer 1's record, their orders (and the
/// order the request names, a guest order now) and those orders' line items leave both folders;
/// every other line stays byte for byte, in its order, with its line ending; unreadable lines
/// are kept and counted; the files keep their permissions; nothing is left beside them. Sent
/// again, it reads the files and rewrites none.
#[test]
fn customers_redact_removes_the_customers_lines_from_the_export_folders() {
    let shop = shop("export-redact");
    let exports = [
        shop.plan.parent().unwrap().join("export-jan"),
        shop.plan.parent().unwrap().join("export-feb"),
    ];
    for dir in &exports {
        write_export(dir);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let orders = exports[0].join("orders.jsonl");
        std::fs::set_permissions(&orders, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    let mut handler = export_handler(&shop, &exports);
    let products_before = file_identity(&exports[0].join("products.jsonl"));
    let outcome = deliver(&mut handler, "customers/redact", &redact_body(1));
    assert_eq!(outcome.status(), 200, "{outcome}");
    let Outcome::Redacted(redacted) = &outcome else {
        panic!("{outcome}");
    };
    let removed = redacted.exports;
    assert_eq!(
        (
            removed.files_read,
            removed.files_rewritten,
            removed.customer_lines_removed,
            removed.order_lines_removed,
            removed.nested_lines_removed,
            removed.unreadable_lines_kept,
        ),
        (4, 4, 2, 6, 8, 4),
        "{outcome}"
    );
    let line = outcome.to_string();
    assert!(
        line.contains(
            "exports: 2 customer lines, 6 orders and 8 nested lines removed (4 of 4 files rewritten); 4 unreadable export lines kept"
        ),
        "{line}"
    );
    assert!(
        !line.contains("Customer") && !line.contains("Order/"),
        "{line}"
    );
    for dir in &exports {
        for file in EXPORT_FILES {
            let text = std::fs::read(dir.join(file)).unwrap();
            assert_eq!(
                String::from_utf8(text).unwrap(),
                export_text(file, false),
                "{}",
                dir.join(file).display()
            );
        }
        let mut left: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["customers.jsonl", "orders.jsonl", "products.jsonl"]);
    }
    // products.jsonl names no customer: not even rewritten.
    assert_eq!(
        file_identity(&exports[0].join("products.jsonl")),
        products_before
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(exports[0].join("orders.jsonl"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640, "{mode:o}");
    }

    // Sent again: every file read, none rewritten, the unreadable lines still reported.
    let before: Vec<_> = exports
        .iter()
        .flat_map(|dir| EXPORT_FILES.map(|file| file_identity(&dir.join(file))))
        .collect();
    let again = deliver(&mut handler, "customers/redact", &redact_body(1));
    let Outcome::Redacted(redacted) = &again else {
        panic!("{again}");
    };
    assert_eq!(
        (
            redacted.exports.files_read,
            redacted.exports.files_rewritten,
            redacted.exports.lines_removed(),
            redacted.exports.unreadable_lines_kept
        ),
        (4, 0, 0, 4),
        "{again}"
    );
    let after: Vec<_> = exports
        .iter()
        .flat_map(|dir| EXPORT_FILES.map(|file| file_identity(&dir.join(file))))
        .collect();
    assert_eq!(before, after);
    for file in EXPORT_FILES {
        assert_eq!(
            std::fs::read_to_string(exports[1].join(file)).unwrap(),
            export_text(file, false)
        );
    }
}

/// `customers/data_request` includes the customer's lines of every export folder (their record,
/// their orders and the order the request names, with their line items), and nobody else's;
/// the export is only read.
#[test]
fn a_data_request_includes_the_customers_lines_of_the_export_folders() {
    let shop = shop("export-data-request");
    let exports = [shop.plan.parent().unwrap().join("export")];
    write_export(&exports[0]);
    let mut handler = export_handler(&shop, &exports);
    let before = EXPORT_FILES.map(|file| file_identity(&exports[0].join(file)));
    let outcome = deliver(
        &mut handler,
        "customers/data_request",
        &data_request_body(1, 31),
    );
    let Outcome::DataRequestWritten(written) = &outcome else {
        panic!("{outcome}");
    };
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&written.file).unwrap()).unwrap();
    let expected = |file: &str| -> Vec<serde_json::Value> {
        export_lines()
            .into_iter()
            .filter(|(f, _, theirs)| *f == file && *theirs)
            .map(|(_, text, _)| serde_json::from_str(&text).unwrap())
            .collect()
    };
    let folders = document["bulk_exports"].as_array().unwrap();
    assert_eq!(folders.len(), 1, "{document:#}");
    assert_eq!(
        folders[0]["customers.jsonl"],
        serde_json::Value::Array(expected("customers.jsonl"))
    );
    assert_eq!(
        folders[0]["orders.jsonl"],
        serde_json::Value::Array(expected("orders.jsonl"))
    );
    assert_eq!(folders[0]["orders.jsonl"].as_array().unwrap().len(), 7);
    let text = document.to_string();
    for someone_else in ["Customer/12", "Customer/2\"", "Order/101", "LineItem/5\""] {
        assert!(!text.contains(someone_else), "{someone_else}");
    }
    assert_eq!(
        EXPORT_FILES.map(|file| file_identity(&exports[0].join(file))),
        before
    );
}

/// `shop/redact` removes the export folders' files (an interrupted export's and redaction's
/// temporaries too) and each folder left empty; a file the pipeline did not write keeps its
/// folder.
#[test]
fn shop_redact_removes_the_export_folders() {
    let shop = shop("export-shop-redact");
    let exports = [
        shop.plan.parent().unwrap().join("export-jan"),
        shop.plan.parent().unwrap().join("export-feb"),
    ];
    for dir in &exports {
        write_export(dir);
    }
    // An interrupted `marginwise refresh` leaves its new export in the folder's `.next`.
    let staging = exports[0].join(model_pipeline::refresh::NEXT_EXPORT_DIR);
    std::fs::create_dir_all(&staging).unwrap();
    let leftovers = [
        exports[0].join("orders.jsonl.part"),
        exports[0].join(".orders.jsonl.redacting"),
        staging.join("customers.jsonl"),
        staging.join("orders.jsonl.part"),
    ];
    for file in &leftovers {
        std::fs::write(file, export_text("orders.jsonl", true)).unwrap();
    }
    let notes = exports[1].join("notes.txt");
    std::fs::write(&notes, "the merchant's").unwrap();
    let mut handler = export_handler(&shop, &exports);
    let outcome = deliver(&mut handler, "shop/redact", &shop_redact_body(SHOP));
    let Outcome::ShopRedacted(removed) = &outcome else {
        panic!("{outcome}");
    };
    for dir in &exports {
        for file in EXPORT_FILES {
            let file = dir.join(file);
            assert!(!file.exists(), "{} is still there", file.display());
            assert!(removed.files_removed.contains(&file), "{}", file.display());
        }
    }
    for file in &leftovers {
        assert!(!file.exists(), "{} is still there", file.display());
    }
    assert!(!staging.exists() && removed.files_removed.contains(&staging));
    assert!(!exports[0].exists() && removed.files_removed.contains(&exports[0]));
    assert!(notes.exists() && !removed.files_removed.contains(&exports[1]));
}

/// A client that sends its headers and then stalls in a body of more than tiny_http buffers (a
/// slow-loris, or a proxy that streams) does not hold up the deliveries behind it: the server
/// gives a body two seconds, and a signed delivery sent meanwhile is answered at once. Bounded:
/// one stalled client, one delivery, every wait at most ten seconds (`post`'s own timeout).
#[test]
fn a_stalled_body_does_not_hold_up_the_next_delivery() {
    use std::io::Write as _;

    let shop = shop("stalled");
    let (server, log) = serve(&shop);
    let mut stalled = std::net::TcpStream::connect(server.addr()).unwrap();
    write!(
        stalled,
        "POST {} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: 50000\r\n\r\n{{\"shop",
        model_pipeline::privacy::COMPLIANCE_PATH
    )
    .unwrap();
    stalled.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));

    let body = redact_body(3);
    let hmac = sign(&secret(), body.as_bytes());
    let headers = [
        ("X-Shopify-Topic", "customers/redact"),
        ("X-Shopify-Shop-Domain", SHOP),
        ("X-Shopify-Hmac-Sha256", hmac.as_str()),
    ];
    let started = std::time::Instant::now();
    assert_eq!(post(&server.url(), &headers, body.as_bytes()), 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the delivery waited {:?} behind a stalled body",
        started.elapsed()
    );
    assert_eq!(shop.stored_profile(3), None);

    // The stalled request is given up on (its reader stays until the client goes, one of
    // `MAX_BODY_READERS`), and said so.
    std::thread::sleep(model_pipeline::privacy::server::BODY_DEADLINE);
    drop(stalled);
    server.shutdown();
    let log = log.lock().unwrap();
    assert!(
        log.iter()
            .any(|line| line.ends_with("dropped, body not received within 2 s")),
        "{log:#?}"
    );
}

/// With the proxy's host as `marginwise auth`'s redirect URI, the merchant's browser lands here:
/// the page says to paste the address, and the code in it is neither shown nor logged.
#[test]
fn the_auth_callback_page_says_to_paste_the_address_and_keeps_no_code() {
    let shop = shop("auth-page");
    let (server, log) = serve(&shop);
    let code = "c0de_9f3a71";
    let url = format!(
        "http://{}{}?code={code}&shop={SHOP}&state=s&hmac=00",
        server.addr(),
        model_pipeline::authorize::CALLBACK_PATH
    );
    let page = ureq::get(&url)
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert!(page.contains("paste it into the terminal"), "{page}");
    assert!(!page.contains(code), "{page}");
    let lines = log.lock().unwrap().clone();
    assert!(
        lines.iter().any(|line| line.contains("/auth/callback")),
        "{lines:?}"
    );
    assert!(lines.iter().all(|line| !line.contains(code)), "{lines:?}");
}

/// Shopify sends every shop's deliveries to the app's one address: one server serves several
/// shops, each delivery reaching only the shop it names.
#[test]
fn one_process_serves_several_shops_each_delivery_reaching_its_own() {
    use model_pipeline::privacy::Router;
    let (first, second) = (shop("multi-a"), shop("multi-b"));
    let (a, b) = ("a-shop.myshopify.com", "b-shop.myshopify.com");
    let handler = |shop: &Shop, domain: &str| {
        Handler::new(
            HandlerConfig::new(secret(), domain, &shop.plan),
            AdminClient::new(shop.credentials(), webhook_client_options()),
        )
    };
    assert!(Router::new(vec![handler(&first, a), handler(&second, a)]).is_err());
    let mut router = Router::new(vec![handler(&first, a), handler(&second, b)]).unwrap();
    let deliver = |router: &mut Router, header: Option<&str>, body: &str, hmac: Option<&str>| {
        let signed = sign(&secret(), body.as_bytes());
        router.handle(&Delivery {
            topic: Some("customers/redact"),
            shop_domain: header,
            hmac: Some(hmac.unwrap_or(&signed)),
            webhook_id: None,
            body: body.as_bytes(),
        })
    };
    let redact = |shop: &str, n: u64| redact_body(n).replace(SHOP, shop);

    // Unsigned: refused before any shop is looked at (one not served would answer 422).
    let c = "c-shop.myshopify.com";
    let outcome = deliver(&mut router, Some(c), &redact(c, 2), Some("AAAA"));
    assert_eq!(outcome.status(), 401, "{outcome}");
    // A topic not acted on is acknowledged whatever shop it names, as with one shop served.
    let body = redact(c, 2);
    let outcome = router.handle(&Delivery {
        topic: Some("app/uninstalled"),
        shop_domain: Some(c),
        hmac: Some(&sign(&secret(), body.as_bytes())),
        webhook_id: None,
        body: body.as_bytes(),
    });
    assert_eq!(outcome.status(), 200, "{outcome}");
    assert!(outcome.to_string().contains("ignored"), "{outcome}");
    // Customer 2 of the second shop only; then customer 3 of the first, named by its payload
    // alone (no header, as a replayed delivery).
    let outcome = deliver(
        &mut router,
        Some(" B-Shop.myshopify.com "),
        &redact(b, 2),
        None,
    );
    assert_eq!(outcome.status(), 200, "{outcome}");
    assert_eq!(second.stored_profile(2), None);
    assert!(first.stored_profile(2).is_some());
    let outcome = deliver(&mut router, None, &redact(a, 3), None);
    assert_eq!(outcome.status(), 200, "{outcome}");
    assert_eq!(first.stored_profile(3), None);
    assert!(second.stored_profile(3).is_some());
    // A shop not served, and a header and payload that disagree, change nothing.
    let outcome = deliver(&mut router, Some(c), &redact(c, 1), None);
    assert_eq!(outcome.status(), 422, "{outcome}");
    assert!(
        outcome
            .to_string()
            .contains("a-shop.myshopify.com, b-shop.myshopify.com"),
        "{outcome}"
    );
    let outcome = deliver(&mut router, Some(a), &redact(b, 1), None);
    assert_eq!(outcome.status(), 400, "{outcome}");
    assert!(first.stored_profile(1).is_some() && second.stored_profile(1).is_some());
}

/// `webhooks --shops FILE`: the shops' credentials files and plan folders from one file.
#[test]
fn the_cli_serves_the_shops_of_a_shops_file() {
    let (first, second) = (shop("shops-file-a"), shop("shops-file-b"));
    let dir = first.plan.parent().unwrap().join("shops-file");
    std::fs::create_dir_all(&dir).unwrap();
    let mut entries = Vec::new();
    for (name, shop) in [("a", &first), ("b", &second)] {
        std::fs::write(
            dir.join(format!("{name}.json")),
            format!(r#"{{"access_token": "{}"}}"#, shop.store.token()),
        )
        .unwrap();
        entries.push(serde_json::json!({
            "shop": format!("{name}-shop.myshopify.com"),
            "endpoint": shop.store.url(),
            "credentials": format!("{name}.json"),
            "plan": shop.plan,
        }));
    }
    let shops = dir.join("shops.json");
    std::fs::write(&shops, serde_json::json!({ "shops": entries }).to_string()).unwrap();
    let body = redact_body(2).replace(SHOP, "b-shop.myshopify.com");
    let payload = dir.join("redact.json");
    std::fs::write(&payload, &body).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_marginwise"))
        .args(["--quiet", "webhooks", "--replay"])
        .arg(&payload)
        .args(["--topic", "customers/redact", "--hmac"])
        .arg(sign(&secret(), body.as_bytes()))
        .arg("--shops")
        .arg(&shops)
        .env_remove("SHOPIFY_ACCESS_TOKEN")
        .env("SHOPIFY_API_SECRET", SECRET)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    assert_eq!(second.stored_profile(2), None);
    assert!(first.stored_profile(2).is_some());
    // A token in the environment would be one shop's: refused with --shops.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_marginwise"))
        .args(["--quiet", "webhooks", "--listen", "127.0.0.1:0", "--shops"])
        .arg(&shops)
        .env("SHOPIFY_ACCESS_TOKEN", "shpat_one_shops")
        .env("SHOPIFY_API_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("a token is one shop's"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Shops do not wait for each other: while one shop's Admin API keeps a delivery busy (throttled
/// until the webhook deadline), another shop's delivery is answered at once.
#[test]
fn a_slow_shop_does_not_hold_up_another_shops_delivery() {
    use model_pipeline::privacy::Router;
    let (url, throttling) = throttling_store("1");
    let fast = shop("not-held-up");
    let dir = fast.plan.parent().unwrap().join("slow-shop-plan");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (slow_shop, fast_shop) = ("slow-shop.myshopify.com", "fast-shop.myshopify.com");
    let slow = Handler::new(
        HandlerConfig::new(secret(), slow_shop, &dir),
        AdminClient::new(
            Credentials::for_local(&url, AccessToken::new("t")).unwrap(),
            webhook_client_options(),
        ),
    );
    let quick = Handler::new(
        HandlerConfig::new(secret(), fast_shop, &fast.plan),
        AdminClient::new(fast.credentials(), webhook_client_options()),
    );
    let server = WebhookServer::start(
        "127.0.0.1:0",
        Router::new(vec![slow, quick]).unwrap(),
        Box::new(|_| {}),
    )
    .unwrap();
    let send = |shop: &'static str| {
        let url = server.url();
        std::thread::spawn(move || {
            let body = redact_body(2).replace(SHOP, shop);
            let hmac = sign(&secret(), body.as_bytes());
            let headers = [
                ("X-Shopify-Topic", "customers/redact"),
                ("X-Shopify-Shop-Domain", shop),
                ("X-Shopify-Hmac-Sha256", hmac.as_str()),
            ];
            let started = std::time::Instant::now();
            let status = post(&url, &headers, body.as_bytes());
            (status, started.elapsed())
        })
    };
    let slow_delivery = send(slow_shop);
    std::thread::sleep(Duration::from_millis(200));
    let (status, took) = send(fast_shop).join().unwrap();
    assert_eq!(status, 200);
    assert!(
        took < Duration::from_millis(1_500),
        "the fast shop waited {took:?} behind the slow one"
    );
    assert_eq!(fast.stored_profile(2), None);
    let (status, took) = slow_delivery.join().unwrap();
    assert_eq!(status, 503, "the slow shop's store never answered");
    assert!(took > Duration::from_secs(2), "{took:?}");
    server.shutdown();
    // The throttling store's thread ends on its own (at most 20 s); nothing waits for it.
    drop(throttling);
}

/// A shop's worker that panics stops the server with an error, as the serving thread would,
/// instead of leaving that shop's deliveries unanswered.
#[test]
fn a_panicking_shop_worker_is_an_error() {
    let shop = shop("worker-panic");
    let server = WebhookServer::start(
        "127.0.0.1:0",
        shop.handler(),
        Box::new(|line| {
            if line.contains(": 200 ") {
                panic!("the log failed");
            }
        }),
    )
    .unwrap();
    let url = server.url();
    let body = redact_body(2);
    let hmac = sign(&secret(), body.as_bytes());
    let headers = [
        ("X-Shopify-Topic", "customers/redact"),
        ("X-Shopify-Shop-Domain", SHOP),
        ("X-Shopify-Hmac-Sha256", hmac.as_str()),
    ];
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    // One delivery: the worker panics handling it, and that alone stops the server.
    let mut request = agent.post(&url);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let _ = request.send(body.as_bytes());
    let error = server
        .wait()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("worker thread panicked"), "{error}");
}

/// Stopping the server lets the delivery under way finish and answers those still waiting 503
/// (Shopify sends them again) instead of working through them.
#[test]
fn stopping_answers_the_waiting_deliveries_503() {
    let (url, _throttling) = throttling_store("1");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("privacy")
        .join("stopping");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let handler = Handler::new(
        HandlerConfig::new(secret(), SHOP, &dir),
        AdminClient::new(
            Credentials::for_local(&url, AccessToken::new("t")).unwrap(),
            webhook_client_options(),
        ),
    );
    let log = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&log);
    let server = WebhookServer::start(
        "127.0.0.1:0",
        handler,
        Box::new(move |line| sink.lock().unwrap().push(line.to_string())),
    )
    .unwrap();
    let deliveries: Vec<_> = (1..=3)
        .map(|n| {
            let url = server.url();
            let thread = std::thread::spawn(move || {
                let body = redact_body(n);
                let hmac = sign(&secret(), body.as_bytes());
                let headers = [
                    ("X-Shopify-Topic", "customers/redact"),
                    ("X-Shopify-Shop-Domain", SHOP),
                    ("X-Shopify-Hmac-Sha256", hmac.as_str()),
                ];
                post(&url, &headers, body.as_bytes())
            });
            std::thread::sleep(Duration::from_millis(100));
            thread
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let started = std::time::Instant::now();
    server.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    for delivery in deliveries {
        assert_eq!(delivery.join().unwrap(), 503);
    }
    let lines = log.lock().unwrap().clone();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("503 the server is stopping"))
            .count(),
        2,
        "{lines:?}"
    );
}
