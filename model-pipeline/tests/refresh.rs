//! `marginwise refresh`, the scheduled job, against the local stand-in: a first run and a run
//! with nothing new, the lock a second run finds, redacted customers kept out of later exports
//! (also one redacted while the plan is written), a failed export that keeps the last one, and
//! a folder of another shop. Bounded: a generated store of 300 customers, servers on 127.0.0.1.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use local_store::{Config, Faults, Handle, LocalStore};
use marginwise_engine::format::PROFILE_KEY;
use model_pipeline::admin::{AccessToken, AdminClient, ClientOptions, Credentials};
use model_pipeline::generate::{self, GeneratorConfig};
use model_pipeline::plan::{PLAN_FILE, customer_gid};
use model_pipeline::privacy::{
    AppSecret, Delivery, Handler, HandlerConfig, Outcome, sign, webhook_client_options,
};
use model_pipeline::progress::Progress;
use model_pipeline::refresh::{
    self, EXPORT_DIR, LOCK_FILE, NEXT_EXPORT_DIR, PLAN_DIR, RECORD_FILE, RefreshOptions,
    RefreshRecord,
};
use model_pipeline::sync::Polling;
use model_pipeline::sync::apply::{ApplyOptions, BatchHook, COMPARE_EXPONENT};
use model_pipeline::sync::state::{STATE_FILE, State};

const CUSTOMERS: u32 = 300;
const SHOP: &str = "marginwise-test.myshopify.com";
const SECRET: &str = "test-app-secret";

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("refresh")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A local stand-in seeded with a generated store, and the refresh folder beside it.
fn store(name: &str) -> (Handle, PathBuf) {
    let dir = scratch(name);
    let seed = dir.join("seed");
    generate::generate(
        &GeneratorConfig {
            customers: CUSTOMERS,
            seed: 11,
        },
        &seed,
        Progress::new(true),
    )
    .unwrap();
    let store = LocalStore::start(Config {
        seed_dir: Some(seed),
        ..Config::default()
    })
    .unwrap();
    (store, dir.join("refresh"))
}

fn run(store: &Handle, dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_marginwise"))
        .args([
            "--quiet",
            "refresh",
            "--no-report",
            "--poll-ms",
            "5",
            "--dir",
        ])
        .arg(dir)
        .args(["--endpoint", &store.url(), "--token", store.token()])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap()
}

fn succeeded(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn failed(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success(), "{stderr}");
    stderr
}

fn record(dir: &Path) -> RefreshRecord {
    refresh::read_record(&dir.join(RECORD_FILE))
        .unwrap()
        .expect("a refresh record")
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Whether any line of the export or the plan names customer `n`: their record, an order of
/// theirs, or their profile.
fn mentions(dir: &Path, n: u64) -> Vec<String> {
    let gid = customer_gid(n);
    let escaped = gid.replace('/', "\\/");
    let mut found = Vec::new();
    for path in [
        dir.join(EXPORT_DIR).join("customers.jsonl"),
        dir.join(EXPORT_DIR).join("orders.jsonl"),
        dir.join(PLAN_DIR).join(PLAN_FILE),
    ] {
        for line in lines(&path) {
            let value: serde_json::Value = serde_json::from_str(&line).unwrap();
            let named = [&value["id"], &value["ownerId"], &value["customer"]["id"]]
                .iter()
                .any(|v| v.as_str().is_some_and(|s| s == gid || s == escaped));
            if named {
                found.push(format!("{}: {line}", path.display()));
            }
        }
    }
    found
}

fn stored_profile(store: &Handle, n: u64) -> Option<String> {
    store
        .metafields()
        .into_iter()
        .find(|m| m.owner_id == customer_gid(n) && m.key == PROFILE_KEY)
        .map(|m| m.value)
}

/// An order of the export without a customer (a guest's, or one that lost its customer), and
/// whether the export holds it.
fn customerless_order(dir: &Path) -> u64 {
    lines(&dir.join(EXPORT_DIR).join("orders.jsonl"))
        .iter()
        .find_map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let id = value["id"].as_str()?.replace("\\/", "/");
            let number = id.strip_prefix("gid://shopify/Order/")?.parse().ok()?;
            value["customer"].is_null().then_some(number)
        })
        .expect("an order without a customer")
}

fn holds_order(dir: &Path, order: u64) -> bool {
    let gid = format!("gid://shopify/Order/{order}");
    lines(&dir.join(EXPORT_DIR).join("orders.jsonl"))
        .iter()
        .any(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            [&value["id"], &value["__parentId"]]
                .iter()
                .any(|v| v.as_str().is_some_and(|s| s.replace("\\/", "/") == gid))
        })
}

/// A customer with a profile in the plan, and orders in the export.
fn customer_with_orders(dir: &Path) -> u64 {
    let orders = lines(&dir.join(EXPORT_DIR).join("orders.jsonl"));
    let plan = std::fs::read_to_string(dir.join(PLAN_DIR).join(PLAN_FILE)).unwrap();
    for line in orders {
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        if let Some(gid) = value["customer"]["id"].as_str() {
            let gid = gid.replace("\\/", "/");
            let n: u64 = gid.rsplit('/').next().unwrap().parse().unwrap();
            if plan.contains(&format!("\"{}\"", customer_gid(n))) {
                return n;
            }
        }
    }
    panic!("no customer with orders and a profile");
}

fn credentials(store: &Handle) -> Credentials {
    Credentials::for_local(&store.url(), AccessToken::new(store.token())).unwrap()
}

/// A hook that puts customer `n` on the refresh folder's suppression list, as the privacy webhook
/// does first when it handles a redaction.
fn records_redaction(store: &Handle, dir: &Path, n: u64) -> BatchHook {
    let state_file = dir.join(PLAN_DIR).join(STATE_FILE);
    let shop = credentials(store).shop;
    BatchHook(Arc::new(move |_| {
        State::open(&state_file, &shop)
            .unwrap()
            .record_redacted(&customer_gid(n))
            .unwrap();
    }))
}

/// Options of a refresh run in this process, polling the stand-in every 5 ms, no report.
fn in_process(dir: &Path) -> RefreshOptions {
    let polling = Polling {
        first: Duration::from_millis(5),
        max: Duration::from_millis(5),
        ..Polling::default()
    };
    let mut apply = ApplyOptions::new(dir, COMPARE_EXPONENT);
    apply.polling = polling;
    RefreshOptions {
        dir: dir.to_path_buf(),
        run: model_pipeline::pipeline::RunOptions {
            skip_report: true,
            ..Default::default()
        },
        apply,
        polling,
        after_score: None,
        before_swap: None,
    }
}

/// Delivers a signed `customers/redact` of customer `n` to a handler serving the refresh folder,
/// as `marginwise webhooks --plan DIR/plan --export DIR/export` would.
fn redact(credentials: Credentials, dir: &Path, n: u64) {
    redact_with_orders(credentials, dir, n, &[]);
}

/// The same, naming `orders` in `orders_to_redact`.
fn redact_with_orders(credentials: Credentials, dir: &Path, n: u64, orders: &[u64]) {
    let mut config = HandlerConfig::new(AppSecret::new(SECRET).unwrap(), SHOP, &dir.join(PLAN_DIR));
    config.export_dirs = vec![dir.join(EXPORT_DIR)];
    let mut handler = Handler::new(
        config,
        AdminClient::new(credentials, webhook_client_options()),
    );
    let body = format!(
        r#"{{"shop_id":954889,"shop_domain":"{SHOP}","customer":{{"id":{n}}},"orders_to_redact":{}}}"#,
        serde_json::to_string(orders).unwrap()
    );
    let hmac = sign(&AppSecret::new(SECRET).unwrap(), body.as_bytes());
    let outcome = handler.handle(&Delivery {
        topic: Some("customers/redact"),
        shop_domain: Some(SHOP),
        hmac: Some(&hmac),
        webhook_id: Some("1"),
        body: body.as_bytes(),
    });
    assert!(matches!(outcome, Outcome::Redacted(_)), "{outcome:?}");
}

#[test]
fn a_first_run_writes_every_value_and_a_second_only_what_changed() {
    let (store, dir) = store("twice");
    let stdout = succeeded(&run(&store, &dir));
    assert!(stdout.contains("exported customers.jsonl"), "{stdout}");
    let first = record(&dir);
    assert!(first.ok && first.failed_stage.is_none() && first.error.is_none());
    assert_eq!(first.last_success_at.as_ref(), Some(&first.started_at));
    let stages: Vec<&str> = first.stages.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(
        stages,
        [
            "state",
            "export",
            "redactions",
            "score",
            "late redactions",
            "apply"
        ]
    );
    for file in ["customers.jsonl", "products.jsonl", "orders.jsonl"] {
        assert!(
            !lines(&dir.join(EXPORT_DIR).join(file)).is_empty(),
            "{file}"
        );
    }
    assert!(!dir.join(EXPORT_DIR).join(NEXT_EXPORT_DIR).exists());
    assert!(dir.join(PLAN_DIR).join(STATE_FILE).exists());
    let plan = first.plan.unwrap();
    let planned = plan.profiles + plan.variants;
    assert_eq!(
        lines(&dir.join(PLAN_DIR).join(PLAN_FILE)).len() as u64,
        planned
    );
    let applied = first.applied.unwrap();
    assert_eq!((applied.planned, applied.written), (planned, planned));
    assert_eq!(store.stats().metafields_stored, planned);

    // The plan is replaced whole (a new file renamed over the old), never rewritten in place: a
    // redaction that renames its scrubbed copy over it meanwhile cannot lose this run's plan.
    let plan_file = dir.join(PLAN_DIR).join(PLAN_FILE);
    let first_plan = std::fs::metadata(&plan_file).unwrap();
    assert_eq!(first_plan.permissions().mode() & 0o777, 0o600, "owner only");

    store.reset_stats();
    succeeded(&run(&store, &dir));
    assert_ne!(
        std::fs::metadata(&plan_file).unwrap().ino(),
        first_plan.ino()
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.join(PLAN_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let second = record(&dir);
    let applied = second.applied.unwrap();
    assert_eq!((applied.written, applied.unchanged), (0, planned));
    assert_eq!(store.stats().writes_applied, 0);
    assert_eq!(store.stats().bulk_operations, 3, "the three exports");
    assert_eq!(second.last_success_at.as_ref(), Some(&second.started_at));
}

#[test]
fn a_run_started_while_another_holds_the_lock_does_nothing() {
    let (store, dir) = store("locked");
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::File::create(dir.join(LOCK_FILE)).unwrap();
    lock.lock().unwrap();
    // A live holder (this test's process) is named as it named itself.
    let holder = format!("process {} since 2026-11-22T03:00:00Z", std::process::id());
    std::fs::write(dir.join(LOCK_FILE), &holder).unwrap();
    let stderr = failed(&run(&store, &dir));
    assert!(
        stderr.contains(&format!(
            "{} is held (by another `marginwise refresh`, {holder}); this run in {} did nothing",
            dir.join(LOCK_FILE).display(),
            dir.display()
        )),
        "{stderr}"
    );
    // A name left by a killed run (a process id above Linux's largest) while the lock is held
    // (the privacy webhook clearing what it left) is said to be gone.
    std::fs::write(
        dir.join(LOCK_FILE),
        "process 4194305 since 2026-11-22T03:00:00Z",
    )
    .unwrap();
    let stderr = failed(&run(&store, &dir));
    assert!(
        stderr.contains(
            "the file names process 4194305 since 2026-11-22T03:00:00Z, which has ended \
             without letting go (probably killed)"
        ),
        "{stderr}"
    );
    assert_eq!(store.stats().graphql_requests, 0);
    assert!(!dir.join(RECORD_FILE).exists());
    assert!(!dir.join(EXPORT_DIR).exists());

    drop(lock);
    succeeded(&run(&store, &dir));
    assert!(record(&dir).ok);
    assert_eq!(
        std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap(),
        "",
        "a finished run no longer names itself in the lock"
    );

    // The privacy webhook's idle check holds the lock for a moment (`when_idle`): a run
    // starting then (in this process, so it asks for the lock while it is certainly held) waits
    // for it instead of stopping.
    let (entered, inside) = std::sync::mpsc::channel();
    let idle_dir = dir.clone();
    let holder = std::thread::spawn(move || {
        refresh::when_idle(&idle_dir, || {
            entered.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(500));
        })
    });
    inside.recv().unwrap();
    let mut client = AdminClient::new(credentials(&store), ClientOptions::default());
    let record = refresh::refresh(&mut client, &in_process(&dir), Progress::new(true)).unwrap();
    assert!(record.ok);
    assert!(holder.join().unwrap().unwrap().is_some());
}

#[test]
fn a_customer_redacted_since_the_last_run_stays_out_of_the_new_export_plan_and_store() {
    let (store, dir) = store("redacted");
    succeeded(&run(&store, &dir));
    let customer = customer_with_orders(&dir);
    assert!(stored_profile(&store, customer).is_some());
    // A killed run's new export, left in `.next`, is scrubbed by the redaction too.
    let staging = dir.join(EXPORT_DIR).join(NEXT_EXPORT_DIR);
    std::fs::create_dir_all(&staging).unwrap();
    let export_customers = dir.join(EXPORT_DIR).join("customers.jsonl");
    std::fs::copy(&export_customers, staging.join("customers.jsonl")).unwrap();
    let names = |path: &Path| {
        lines(path).iter().any(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            value["id"].as_str().map(|s| s.replace("\\/", "/")) == Some(customer_gid(customer))
        })
    };
    assert!(names(&staging.join("customers.jsonl")));
    // The redaction also names an order that has lost its customer (a guest order plays it).
    let detached = customerless_order(&dir);
    assert!(holds_order(&dir, detached));
    redact_with_orders(credentials(&store), &dir, customer, &[detached]);
    assert!(!holds_order(&dir, detached));
    assert!(mentions(&dir, customer).is_empty());
    // No run is under way: what a killed one left goes whole.
    assert!(!staging.exists());
    assert_eq!(stored_profile(&store, customer), None);

    // The stand-in still holds the customer and their orders, as a store may: the new export
    // brings them back, and the run takes them out before anything reads it.
    let stdout = succeeded(&run(&store, &dir));
    assert_eq!(mentions(&dir, customer), Vec::<String>::new());
    assert!(!holds_order(&dir, detached), "the named order came back");
    assert_eq!(stored_profile(&store, customer), None);
    let kept = record(&dir).redactions;
    assert_eq!((kept.customers, kept.orders), (1, 1));
    // Their record, at least one order, and its line items.
    assert!(kept.export_lines_removed >= 3, "{kept:?}");
    assert!(
        stdout.contains("of customers redacted earlier out of the new export"),
        "{stdout}"
    );
}

#[test]
fn a_customer_redacted_while_the_plan_is_written_is_taken_out_afterwards() {
    let (store, dir) = store("late");
    succeeded(&run(&store, &dir));
    let customer = customer_with_orders(&dir);
    store.reset_stats();
    // The redaction lands as the plan is written: the customer is on the suppression list, and
    // the files this run just put in place still hold them (the webhook's own scrub ran on the
    // files this run replaced).
    let hook = records_redaction(&store, &dir, customer);
    let mut options = in_process(&dir);
    options.after_score = Some(hook);
    let mut client = AdminClient::new(credentials(&store), ClientOptions::default());
    let record = refresh::refresh(&mut client, &options, Progress::new(true)).unwrap();
    assert_eq!(mentions(&dir, customer), Vec::<String>::new());
    assert_eq!(record.redactions.customers, 0);
    assert_eq!(record.redactions.late_customers, 1);
    // Their record, their orders with line items, and their profile in the plan.
    assert!(
        record.redactions.late_lines_removed >= 4,
        "{:?}",
        record.redactions
    );
    // Their profile was in the store from the first run and is unchanged: nothing was sent.
    let writes = store.write_counts();
    assert!(
        writes.iter().all(|w| w.owner_id != customer_gid(customer)),
        "{writes:?}"
    );
}

#[test]
fn a_failed_export_keeps_the_last_complete_one_and_the_record_says_where() {
    let (store, dir) = store("failed-export");
    succeeded(&run(&store, &dir));
    let first = record(&dir);
    // Each file's bytes and modification time: a file put in place again with the same bytes
    // (the store has not changed) would still be a file of the failed run.
    let export = |file: &str| {
        let path = dir.join(EXPORT_DIR).join(file);
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        (std::fs::read(&path).unwrap(), modified)
    };
    let before: Vec<_> = ["customers.jsonl", "products.jsonl", "orders.jsonl"]
        .iter()
        .map(|f| export(f))
        .collect();

    // The customers (300 objects) and products (127) exports complete, the orders export fails.
    store.set_faults(Faults {
        bulk_fail_after: Some(400),
        ..Faults::default()
    });
    let stderr = failed(&run(&store, &dir));
    assert!(stderr.contains("refresh stage `export`"), "{stderr}");
    let after: Vec<_> = ["customers.jsonl", "products.jsonl", "orders.jsonl"]
        .iter()
        .map(|f| export(f))
        .collect();
    assert!(before == after, "the last complete export changed");
    let failed_record = record(&dir);
    assert!(!failed_record.ok);
    assert_eq!(failed_record.failed_stage.as_deref(), Some("export"));
    assert!(
        failed_record
            .error
            .as_deref()
            .unwrap_or("")
            .contains("export")
    );
    assert_eq!(failed_record.last_success_at, first.last_success_at);
    assert!(failed_record.applied.is_none());
    // What the failed export completed (customers and products) is not left behind.
    assert!(!dir.join(EXPORT_DIR).join(NEXT_EXPORT_DIR).exists());

    // The schedule's monitor: the last run failed, but one succeeded within the allowed age.
    let status = Command::new(env!("CARGO_BIN_EXE_marginwise"))
        .args(["refresh", "--status", "--max-age-hours", "1", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let said = succeeded(&status);
    assert!(
        said.contains("failed at stage `export`") && said.contains("last success"),
        "{said}"
    );
    let never = Command::new(env!("CARGO_BIN_EXE_marginwise"))
        .args(["refresh", "--status", "--dir"])
        .arg(dir.join("nothing-here"))
        .output()
        .unwrap();
    let stderr = failed(&never);
    assert!(
        stderr.contains("1 of 1 refresh folders have had no successful run in the last 48 h"),
        "{stderr}"
    );

    store.set_faults(Faults::default());
    succeeded(&run(&store, &dir));
    assert!(record(&dir).ok);
    assert!(!dir.join(EXPORT_DIR).join(NEXT_EXPORT_DIR).exists());
}

#[test]
fn a_folder_of_another_shop_is_refused_before_the_store_is_asked_anything() {
    let (store, dir) = store("other-shop");
    std::fs::create_dir_all(dir.join(PLAN_DIR)).unwrap();
    drop(State::open(&dir.join(PLAN_DIR).join(STATE_FILE), "other.myshopify.com").unwrap());
    let stderr = failed(&run(&store, &dir));
    assert!(
        stderr.contains("refresh stage `state`")
            && stderr.contains(&format!(
                "{} is other.myshopify.com's refresh folder, not",
                dir.display()
            ))
            && stderr.contains(
                "give each store its own folder (--dir, or its \"refresh\" in the shops file)"
            )
            && !stderr.contains("--state"),
        "{stderr}"
    );
    assert_eq!(store.stats().graphql_requests, 0);
    assert_eq!(record(&dir).failed_stage.as_deref(), Some("state"));
}

/// One shops file serves the schedule and the webhooks: every shop naming a refresh folder is
/// refreshed with its own credentials and bundles, a shop that fails (listed first) does not stop
/// the next, and one without a refresh folder is named and left alone.
#[test]
fn a_shops_file_refreshes_each_shop_and_one_failing_does_not_stop_the_others() {
    let (a, dir_a) = store("shops-a");
    let (b, dir_b) = store("shops-b");
    b.set_faults(Faults {
        bulk_fail_after: Some(400),
        ..Faults::default()
    });
    let root = scratch("shops");
    for (name, store) in [("a", &a), ("b", &b), ("c", &a)] {
        std::fs::write(
            root.join(format!("{name}.json")),
            format!(
                r#"{{"shop": "{name}.myshopify.com", "access_token": "{}"}}"#,
                store.token()
            ),
        )
        .unwrap();
    }
    let bundles = dir_a
        .parent()
        .unwrap()
        .join("seed")
        .join(generate::BUNDLES_FILE);
    let shops = serde_json::json!({"shops": [
        {"credentials": "b.json", "endpoint": b.url(), "refresh": dir_b},
        {"credentials": "a.json", "endpoint": a.url(), "refresh": dir_a, "bundles": bundles},
        {"credentials": "c.json", "endpoint": a.url(), "plan": "c/plan"},
    ]});
    let file = root.join("shops.json");
    std::fs::write(&file, shops.to_string()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_marginwise"))
        .args([
            "--quiet",
            "refresh",
            "--no-report",
            "--poll-ms",
            "5",
            "--shops",
        ])
        .arg(&file)
        .env_remove("SHOPIFY_ACCESS_TOKEN")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = failed(&output);
    assert!(
        stderr.contains("1 of 2 shops failed to refresh (b.myshopify.com)")
            && stderr.contains("error: b.myshopify.com: refresh stage `export`")
            && stderr.contains("shops[2] (c.myshopify.com) names no \"refresh\" folder"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("== a.myshopify.com: refreshed"), "{stdout}");
    assert_eq!(record(&dir_b).failed_stage.as_deref(), Some("export"));
    let record_a = record(&dir_a);
    assert!(record_a.ok);
    assert!(record_a.applied.unwrap().written > 0);
    // Shop a's own bundles flagged its bundle parents.
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir_a.join(PLAN_DIR).join("summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["bundle_parents"]["flagged"], 2, "{summary}");
    assert!(!root.join("c").exists(), "shop c was touched");

    // The monitor reads no credentials file: it makes no request.
    for name in ["a", "b", "c"] {
        std::fs::remove_file(root.join(format!("{name}.json"))).unwrap();
    }
    let output = Command::new(env!("CARGO_BIN_EXE_marginwise"))
        .args(["refresh", "--status", "--shops"])
        .arg(&file)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = failed(&output);
    assert!(
        stderr.contains("1 of 2 refresh folders have had no successful run")
            && stderr.contains(&dir_b.display().to_string()),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&dir_a.display().to_string()) && stdout.contains("STALE"),
        "{stdout}"
    );
}

/// Waits (30 s at most) until `child` has written `file`, then checks it is still running 300 ms
/// later: waiting for a lock the test holds.
fn waits_after(child: &mut std::process::Child, file: &Path, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !file.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} never wrote {}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "{what} did not wait");
}

/// The swap of a new export and a redaction's rewrite of the export folder take turns on the
/// folder's lock: neither can rename its files over the other's. Held here by the test, the lock
/// keeps a refresh from swapping (its new export waits in `.next`) and a redaction from
/// rewriting, until it is let go. Bounded: every wait is at most 30 s.
#[test]
fn the_swap_and_a_redactions_rewrite_of_the_export_take_turns() {
    use std::os::unix::fs::MetadataExt as _;
    let (store, dir) = store("turns");
    succeeded(&run(&store, &dir));
    let export = dir.join(EXPORT_DIR);
    let inode = |file: &str| std::fs::metadata(export.join(file)).unwrap().ino();
    let before = inode("orders.jsonl");

    let held = model_pipeline::folder_lock::lock(&export).unwrap().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_marginwise"))
        .args([
            "--quiet",
            "refresh",
            "--no-report",
            "--poll-ms",
            "5",
            "--dir",
        ])
        .arg(&dir)
        .args(["--endpoint", &store.url(), "--token", store.token()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let staged = export.join(NEXT_EXPORT_DIR).join("orders.jsonl");
    waits_after(&mut child, &staged, "the refresh");
    assert_eq!(
        inode("orders.jsonl"),
        before,
        "swapped while the folder was locked"
    );
    // The run under way has a record without an end, which the monitor reports as such.
    assert_eq!(record(&dir).finished_at, None);
    let status = model_pipeline::refresh::status(&dir, 3_600, jiff::Timestamp::now()).unwrap();
    assert!(
        status.line().contains("has not finished"),
        "{}",
        status.line()
    );
    drop(held);
    assert!(child.wait().unwrap().success());
    assert_ne!(inode("orders.jsonl"), before);
    assert!(record(&dir).ok);

    let customer = customer_with_orders(&dir);
    let held = model_pipeline::folder_lock::lock(&export).unwrap().unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    let (served, redact_dir) = (credentials(&store), dir.clone());
    let redaction = std::thread::spawn(move || {
        redact(served, &redact_dir, customer);
        done.send(()).unwrap();
    });
    assert!(
        finished.recv_timeout(Duration::from_millis(300)).is_err(),
        "the redaction rewrote the export while the folder was locked"
    );
    drop(held);
    finished.recv_timeout(Duration::from_secs(30)).unwrap();
    redaction.join().unwrap();
    assert_eq!(mentions(&dir, customer), Vec::<String>::new());
}

/// A redaction recorded after the run read the suppression list, whose scrub of the last export
/// the swap then undoes: the customer is taken out of the swapped-in export even when scoring
/// fails afterwards (here, an invalid setting).
#[test]
fn a_customer_redacted_just_before_the_swap_stays_out_even_when_scoring_fails() {
    let (store, dir) = store("before-swap");
    succeeded(&run(&store, &dir));
    let customer = customer_with_orders(&dir);
    let hook = records_redaction(&store, &dir, customer);
    let mut options = in_process(&dir);
    options.run.score.monthly_discount_rate = 5.0;
    options.before_swap = Some(hook);
    let mut client = AdminClient::new(credentials(&store), ClientOptions::default());
    let error = refresh::refresh(&mut client, &options, Progress::new(true)).unwrap_err();
    assert!(
        format!("{error:#}").contains("refresh stage `score`"),
        "{error:#}"
    );
    let record = record(&dir);
    assert_eq!(record.failed_stage.as_deref(), Some("score"));
    let export_mentions: Vec<String> = mentions(&dir, customer)
        .into_iter()
        .filter(|line| line.contains(EXPORT_DIR))
        .collect();
    assert_eq!(export_mentions, Vec::<String>::new());
    assert_eq!(record.redactions.late_customers, 1);
}

/// A plain `marginwise export` into a folder the webhooks serve waits for the folder's lock
/// before it renames a file it completed, as the refresh's swap does. Bounded: 30 s at most.
#[test]
fn a_plain_export_waits_for_the_folders_lock_before_renaming() {
    let (store, dir) = store("plain-export");
    let out = dir.join("export");
    std::fs::create_dir_all(&out).unwrap();
    let held = model_pipeline::folder_lock::lock(&out).unwrap().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_marginwise"))
        .args(["--quiet", "export", "--out"])
        .arg(&out)
        .args(["--endpoint", &store.url(), "--token", store.token()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let partial = out.join("customers.jsonl.part");
    waits_after(&mut child, &partial, "the export");
    assert!(!out.join("customers.jsonl").exists());
    drop(held);
    assert!(child.wait().unwrap().success());
    assert!(!lines(&out.join("customers.jsonl")).is_empty());
}
