//! The write-back against the local stand-in without faults: what a re-run writes after 1 % of
//! customers changed, and how much of a Standard plan's rate limit the client uses.
//!
//! Both print their figures (run with `--nocapture`). The pacing test runs for about 20 seconds
//! by design: it measures a rate.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use local_store::{Config, Handle, LocalStore, StoreData};
use marginwise_engine::format::{NAMESPACE, PROFILE_KEY};
use marginwise_engine::{Profile, Segment};
use model_pipeline::admin::retry::Backoff;
use model_pipeline::admin::{AccessToken, AdminClient, ClientOptions, Credentials};
use model_pipeline::generate::{DEFAULT_OPT_OUT_TAG, GeneratorConfig, generate};
use model_pipeline::ingest::{CUSTOMERS_FILE, IngestOptions, ORDERS_FILE, PRODUCTS_FILE};
use model_pipeline::pipeline::{self, RunOptions};
use model_pipeline::plan::{METAFIELD_TYPE, MetafieldsSetInput, PLAN_FILE, customer_gid};
use model_pipeline::progress::Progress;
use model_pipeline::sync::apply::{ApplyOptions, COMPARE_EXPONENT};
use model_pipeline::sync::{self, Polling};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("sync")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn client(store: &Handle) -> AdminClient {
    AdminClient::new(
        Credentials::for_local(&store.url(), AccessToken::new(store.token())).unwrap(),
        ClientOptions {
            backoff: Backoff::new(Duration::from_millis(5), Duration::from_millis(200), 12, 1),
            ..ClientOptions::default()
        },
    )
}

fn options(dir: &Path) -> ApplyOptions {
    let mut options = ApplyOptions::new(dir, COMPARE_EXPONENT);
    options.polling = Polling {
        first: Duration::from_millis(10),
        max: Duration::from_millis(100),
        timeout: Duration::from_secs(60),
    };
    options
}

fn score(input: &Path, out: &Path) {
    let options = RunOptions {
        ingest: IngestOptions {
            opt_out_tag: Some(DEFAULT_OPT_OUT_TAG.into()),
            ..IngestOptions::default()
        },
        skip_report: true,
        ..RunOptions::default()
    };
    pipeline::run(input, out, &options, Progress::hidden()).unwrap();
}

/// Copies the store in `from` to `to`, adding one order (one line, copied from an existing line)
/// for every 100th customer: 1 % of customers changed.
fn change_one_percent(from: &Path, to: &Path) -> usize {
    std::fs::create_dir_all(to).unwrap();
    for file in [CUSTOMERS_FILE, PRODUCTS_FILE] {
        std::fs::copy(from.join(file), to.join(file)).unwrap();
    }
    let orders = std::fs::read_to_string(from.join(ORDERS_FILE)).unwrap();
    let customers = std::fs::read_to_string(from.join(CUSTOMERS_FILE)).unwrap();
    let last_order = orders
        .lines()
        .rev()
        .find(|l| !l.contains("__parentId"))
        .unwrap();
    let last: serde_json::Value = serde_json::from_str(last_order).unwrap();
    let processed_at = last["processedAt"].as_str().unwrap().to_string();
    let line: serde_json::Value =
        serde_json::from_str(orders.lines().find(|l| l.contains("__parentId")).unwrap()).unwrap();
    let mut out = std::fs::File::create(to.join(ORDERS_FILE)).unwrap();
    out.write_all(orders.as_bytes()).unwrap();
    let mut changed = 0;
    for (i, customer) in customers.lines().enumerate().filter(|(i, _)| i % 100 == 0) {
        let customer: serde_json::Value = serde_json::from_str(customer).unwrap();
        let order_id = format!("gid://shopify/Order/{}", 9_000_000_000u64 + i as u64);
        let order = serde_json::json!({
            "id": order_id, "createdAt": processed_at, "processedAt": processed_at,
            "cancelledAt": null, "test": false, "currencyCode": last["currencyCode"],
            "customer": {"id": customer["id"]},
        });
        let mut item = line.clone();
        item["id"] = format!("gid://shopify/LineItem/{}", 90_000_000_000u64 + i as u64).into();
        item["__parentId"] = order_id.into();
        writeln!(out, "{order}\n{item}").unwrap();
        changed += 1;
    }
    changed
}

#[test]
fn a_rerun_after_one_percent_of_customers_changed_writes_at_most_two_percent() {
    let dir = scratch("rerun");
    let before = dir.join("before");
    generate(
        &GeneratorConfig {
            customers: 10_000,
            seed: 3,
        },
        &before,
        Progress::hidden(),
    )
    .unwrap();
    let after = dir.join("after");
    let changed_customers = change_one_percent(&before, &after);
    let plan = dir.join("plan");
    let store = LocalStore::start(Config {
        seed_dir: Some(after.clone()),
        restore_rate: 20_000.0,
        ..Config::default()
    })
    .unwrap();
    let mut client = client(&store);

    score(&before, &plan);
    let full = sync::apply_plan(&mut client, &plan, None, &options(&plan)).unwrap();
    let full_writes = store.stats().writes_applied;
    store.reset_stats();

    score(&after, &plan);
    let rerun = sync::apply_plan(&mut client, &plan, None, &options(&plan)).unwrap();
    let rerun_writes = store.stats().writes_applied;
    let share = rerun_writes as f64 / full_writes as f64;
    println!(
        "re-run after {changed_customers} of 10000 customers changed: {rerun_writes} writes vs {full_writes} in the full run = {:.2} % (full run: {} planned; re-run: {} planned, {} unchanged within tolerance)",
        share * 100.0,
        full.planned,
        rerun.planned,
        rerun.unchanged
    );
    assert_eq!(full.written, full_writes);
    assert_eq!(store.stats().duplicate_writes, 0);
    assert!(share <= 0.02, "re-run wrote {:.2} %", share * 100.0);
    // The re-run wrote something: the changed customers are not all within tolerance.
    assert!(rerun_writes > 0);
}

#[test]
fn pacing_at_a_standard_plan_restore_rate() {
    // 200 calls of 25 profiles, 10 points each: 2000 points, 20 s at 100 points per second once
    // the bucket is empty.
    const N: u64 = 5_000;
    let dir = scratch("pacing");
    let mut customers = String::new();
    let mut plan = String::new();
    for i in 1..=N {
        customers.push_str(&format!("{{\"id\":\"{}\"}}\n", customer_gid(i)));
        let profile = Profile {
            segment: Segment::Active,
            clv_minor: i as i64,
            churn_bps: 0,
            expected_orders_12m_milli: 0,
            discount_share_bps: 0,
            p_alive_bps: 10_000,
        };
        let record = MetafieldsSetInput {
            owner_id: customer_gid(i),
            namespace: NAMESPACE.to_string(),
            key: PROFILE_KEY.to_string(),
            kind: METAFIELD_TYPE.to_string(),
            value: profile.encode(),
        };
        plan.push_str(&serde_json::to_string(&record).unwrap());
        plan.push('\n');
    }
    std::fs::write(dir.join(PLAN_FILE), plan).unwrap();
    let data = StoreData::from_jsonl(&[("customers.jsonl", &customers)]).unwrap();
    let store = LocalStore::start(Config {
        data: Some(Arc::new(data)),
        restore_rate: 100.0,
        ..Config::default()
    })
    .unwrap();
    // Start from an empty bucket, so the figure is the sustained rate, not the initial burst.
    store.drain_bucket();
    let mut client = client(&store);
    let mut options = options(&dir);
    options.bulk_threshold = usize::MAX;
    let report = sync::apply_plan(&mut client, &dir, None, &options).unwrap();
    let available = 100.0 * report.elapsed_seconds;
    let share = report.points_spent / available;
    let stats = store.stats();
    println!(
        "pacing at 100 points/s: {:.0} points used in {:.2} s = {:.1} % of the {:.0} points restored; throttled {} times (server count {}), {} requests",
        report.points_spent,
        report.elapsed_seconds,
        share * 100.0,
        available,
        report.client.throttled,
        stats.throttled,
        report.client.requests
    );
    assert_eq!(stats.writes_applied, N);
    assert!(share >= 0.90, "used {:.1} %", share * 100.0);
    assert!(stats.throttled <= 5, "throttled {} times", stats.throttled);
}

/// A lost state database (the folder moved to another machine): the next apply reads the store's
/// values before writing and writes none of the ones already there, instead of sending every
/// value as "must not exist yet" and reading each back after its refusal. A first install (a
/// store holding none) reads one page only.
#[test]
fn a_lost_state_database_is_rebuilt_from_the_store_without_writing_again() {
    let dir = scratch("lost-state");
    let export = dir.join("export");
    generate(
        &GeneratorConfig {
            customers: 2_000,
            seed: 9,
        },
        &export,
        Progress::hidden(),
    )
    .unwrap();
    let plan = dir.join("plan");
    score(&export, &plan);
    let store = LocalStore::start(Config {
        seed_dir: Some(export.clone()),
        restore_rate: 20_000.0,
        ..Config::default()
    })
    .unwrap();
    let mut client = client(&store);
    let first = sync::apply_plan(&mut client, &plan, None, &options(&plan)).unwrap();
    assert_eq!(first.read_first, 0);
    assert_eq!(first.written, first.planned);
    let first_requests = store.stats().graphql_requests;
    store.reset_stats();

    let moved = dir.join("moved-state.sqlite");
    let again = sync::apply_plan(&mut client, &plan, Some(&moved), &options(&plan)).unwrap();
    assert_eq!(again.read_first, again.planned);
    assert_eq!(again.unchanged, again.planned);
    assert_eq!((again.changed, again.read_back), (0, 0));
    assert_eq!(store.stats().writes_applied, 0);
    assert_eq!(store.stats().duplicate_writes, 0);
    println!(
        "lost state database: {} values read back in {} requests, {} written (first run: {} requests)",
        again.read_first,
        store.stats().graphql_requests,
        store.stats().writes_applied,
        first_requests
    );
    // Pages of 250 (customer profiles and variant data apart), against 25 per write batch.
    let pages = again.planned.div_ceil(250) + 1;
    assert!(
        store.stats().graphql_requests <= pages + 2,
        "{} requests for {} values (first run: {first_requests})",
        store.stats().graphql_requests,
        again.planned
    );
    // The rebuilt state knows every value: a third run reads nothing.
    store.reset_stats();
    let third = sync::apply_plan(&mut client, &plan, Some(&moved), &options(&plan)).unwrap();
    assert_eq!((third.read_first, third.unchanged), (0, third.planned));
}
