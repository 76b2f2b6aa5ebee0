//! Applying plans to the local stand-in of the Admin API under faults: a THROTTLED storm, 5xx
//! bursts, connections dropped before and after the server applied a write, and a process killed
//! in the middle of applying 100,000 metafields. Each ends with the store holding exactly the
//! plan, every metafield written once (the stand-in counts writes per metafield), nothing lost.
//!
//! Every test is bounded: fixed plan sizes, bounded retries, and restore rates high enough that
//! the bucket does not dominate (pacing at a Standard plan's rate is measured in `sync.rs`).
//! Run with `--nocapture` to see the figures each test prints.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use local_store::{Burst, Config, Faults, Handle, LocalStore, StoreData};
use marginwise_engine::format::{NAMESPACE, PROFILE_KEY};
use marginwise_engine::{Profile, Segment};
use model_pipeline::admin::retry::Backoff;
use model_pipeline::admin::{AccessToken, AdminClient, ClientOptions, Credentials};
use model_pipeline::plan::{METAFIELD_TYPE, MetafieldsSetInput, PLAN_FILE, customer_gid};
use model_pipeline::sync::apply::{ApplyOptions, ApplyReport, COMPARE_EXPONENT};
use model_pipeline::sync::{self, Polling};
use rand::{Rng, SeedableRng};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("sync-faults")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A store whose only objects are `n` customers (the owners of the plan's profiles).
fn store(n: u64, restore_rate: f64) -> Handle {
    let mut customers = String::with_capacity(n as usize * 40);
    for i in 1..=n {
        customers.push_str(&format!("{{\"id\":\"{}\"}}\n", customer_gid(i)));
    }
    let data = StoreData::from_jsonl(&[("customers.jsonl", &customers)]).unwrap();
    LocalStore::start(Config {
        data: Some(Arc::new(data)),
        restore_rate,
        ..Config::default()
    })
    .unwrap()
}

/// A plan of `n` profiles; `version` changes every value.
fn write_plan(dir: &Path, n: u64, version: i64) -> BTreeMap<String, String> {
    let mut text = String::new();
    let mut expected = BTreeMap::new();
    for i in 1..=n {
        let profile = Profile {
            segment: Segment::ALL[(i % 5) as usize],
            clv_minor: (i as i64 * 37) % 100_000 + 1_000 * version,
            churn_bps: (i as i64 * 13) % 10_000,
            expected_orders_12m_milli: (i as i64 * 7) % 5_000,
            discount_share_bps: (i as i64 * 3) % 10_000,
            p_alive_bps: 10_000 - (i as i64 * 13) % 10_000,
        };
        let record = MetafieldsSetInput {
            owner_id: customer_gid(i),
            namespace: NAMESPACE.to_string(),
            key: PROFILE_KEY.to_string(),
            kind: METAFIELD_TYPE.to_string(),
            value: profile.encode(),
        };
        text.push_str(&serde_json::to_string(&record).unwrap());
        text.push('\n');
        expected.insert(record.owner_id, record.value);
    }
    std::fs::write(dir.join(PLAN_FILE), text).unwrap();
    expected
}

fn client(store: &Handle, seed: u64) -> AdminClient {
    AdminClient::new(
        Credentials::for_local(&store.url(), AccessToken::new(store.token())).unwrap(),
        ClientOptions {
            backoff: Backoff::new(
                Duration::from_millis(5),
                Duration::from_millis(200),
                12,
                seed,
            ),
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

/// The store holds exactly the plan, and no metafield was written twice.
fn assert_store_is_the_plan(store: &Handle, plan: &BTreeMap<String, String>) {
    let held: BTreeMap<String, String> = store
        .metafields()
        .into_iter()
        .filter(|m| m.key == PROFILE_KEY)
        .map(|m| (m.owner_id, m.value))
        .collect();
    let missing = plan.keys().filter(|k| !held.contains_key(*k)).count();
    let wrong = plan
        .iter()
        .filter(|(k, v)| held.get(*k).is_some_and(|h| h != *v))
        .count();
    let extra = held.keys().filter(|k| !plan.contains_key(*k)).count();
    assert_eq!(
        (missing, wrong, extra),
        (0, 0, 0),
        "missing, wrong, extra metafields"
    );
    let stats = store.stats();
    assert_eq!(stats.duplicate_writes, 0, "{stats:?}");
    assert_eq!(stats.metafields_written_more_than_once, 0, "{stats:?}");
    assert_eq!(stats.writes_applied, plan.len() as u64, "{stats:?}");
}

fn apply(store: &Handle, dir: &Path, seed: u64, threshold: usize) -> ApplyReport {
    let mut client = client(store, seed);
    let mut options = options(dir);
    options.bulk_threshold = threshold;
    sync::apply_plan(&mut client, dir, None, &options).unwrap()
}

fn print_figures(name: &str, report: &ApplyReport, store: &Handle) {
    let stats = store.stats();
    println!(
        "{name}: planned {}, written {}, read back {}, requests {}, throttled {}, 5xx retries {}, connection retries {}; store: writes {}, duplicates {}, injected 5xx {}, dropped before {}, dropped after {}",
        report.planned,
        report.written,
        report.read_back,
        report.client.requests,
        report.client.throttled,
        report.client.retries_5xx,
        report.client.retries_connection,
        stats.writes_applied,
        stats.duplicate_writes,
        stats.injected_5xx,
        stats.dropped_before,
        stats.dropped_after
    );
}

#[test]
fn a_throttled_storm_loses_and_repeats_nothing() {
    let dir = scratch("throttle");
    let store = store(2_000, 5_000.0);
    let plan = write_plan(&dir, 2_000, 0);
    store.set_faults(Faults {
        throttle_storm: 40,
        ..Faults::default()
    });
    let report = apply(&store, &dir, 1, usize::MAX);
    print_figures("THROTTLED storm", &report, &store);
    assert!(store.stats().throttled >= 40);
    assert!(report.client.throttled >= 40);
    assert_store_is_the_plan(&store, &plan);
}

#[test]
fn bursts_of_5xx_lose_and_repeat_nothing() {
    let dir = scratch("5xx");
    let store = store(2_000, 5_000.0);
    let plan = write_plan(&dir, 2_000, 0);
    store.set_faults(Faults {
        error_5xx: Some(Burst {
            every: 9,
            length: 3,
            writes_only: false,
            status: Some(503),
            delay_ms: None,
        }),
        ..Faults::default()
    });
    let report = apply(&store, &dir, 2, usize::MAX);
    print_figures("5xx bursts", &report, &store);
    assert!(store.stats().injected_5xx > 20);
    assert_store_is_the_plan(&store, &plan);
}

#[test]
fn dropped_connections_before_and_after_the_write_lose_and_repeat_nothing() {
    let dir = scratch("dropped");
    let store = store(2_000, 5_000.0);
    let plan = write_plan(&dir, 2_000, 0);
    let burst = |every| Burst {
        every,
        length: 1,
        writes_only: true,
        status: None,
        delay_ms: None,
    };
    store.set_faults(Faults {
        drop_before: Some(burst(7)),
        drop_after: Some(burst(5)),
        ..Faults::default()
    });
    let report = apply(&store, &dir, 3, usize::MAX);
    print_figures("dropped connections", &report, &store);
    let stats = store.stats();
    assert!(
        stats.dropped_after > 5 && stats.dropped_before > 5,
        "{stats:?}"
    );
    // Every write dropped after it was applied was read back, not sent again.
    assert!(report.read_back > 0);
    assert_store_is_the_plan(&store, &plan);
}

#[test]
fn the_bulk_path_under_dropped_connections_and_5xx_loses_and_repeats_nothing() {
    let dir = scratch("bulk-faults");
    let store = store(5_000, 5_000.0);
    let plan = write_plan(&dir, 5_000, 0);
    store.set_faults(Faults {
        error_5xx: Some(Burst {
            every: 4,
            length: 1,
            writes_only: false,
            status: Some(502),
            delay_ms: None,
        }),
        // The second mutation is `bulkOperationRunMutation`: it starts, and its answer is lost.
        drop_after: Some(Burst {
            every: 2,
            length: 1,
            writes_only: true,
            status: None,
            delay_ms: None,
        }),
        ..Faults::default()
    });
    let report = apply(&store, &dir, 4, 1_000);
    print_figures("bulk path with faults", &report, &store);
    assert_store_is_the_plan(&store, &plan);
}

/// Runs `marginwise apply` against `store`; `kill_after` kills it at that moment.
fn apply_in_child(store: &Handle, dir: &Path, kill_after: Option<Duration>) -> (bool, Duration) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_marginwise"))
        .args(["--quiet", "apply", "--plan"])
        .arg(dir)
        .args(["--endpoint", &store.url(), "--token", store.token()])
        .args(["--jitter-seed", "5", "--poll-ms", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let output = child.wait_with_output().unwrap();
            assert!(
                status.success(),
                "apply failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            print!("{}", String::from_utf8_lossy(&output.stdout));
            return (true, started.elapsed());
        }
        if kill_after.is_some_and(|k| started.elapsed() >= k) {
            child.kill().unwrap();
            child.wait().unwrap();
            return (false, started.elapsed());
        }
        assert!(Instant::now() < deadline, "apply did not finish in 120 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn killing_the_process_in_the_middle_of_100k_metafields_loses_and_repeats_nothing() {
    const N: u64 = 100_000;
    let dir = scratch("kill");
    let store = store(N, 20_000.0);
    let plan = write_plan(&dir, N, 0);
    // A seeded point inside the run: a full run takes a few seconds here (bulk path).
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    let kill_after = Duration::from_millis(rng.random_range(300..2_500));
    let (finished, ran) = apply_in_child(&store, &dir, Some(kill_after));
    let at_kill = store.stats();
    println!(
        "kill after {:.2} s (finished before the kill: {finished}); the store held {} of {N} metafields then",
        ran.as_secs_f64(),
        at_kill.metafields_stored
    );
    let (finished, ran) = apply_in_child(&store, &dir, None);
    assert!(finished);
    println!("re-run finished in {:.2} s", ran.as_secs_f64());
    assert_store_is_the_plan(&store, &plan);
}

#[test]
fn killing_the_process_between_batches_of_25_loses_and_repeats_nothing() {
    const N: u64 = 6_000;
    let dir = scratch("kill-batches");
    let store = store(N, 50_000.0);
    let plan = write_plan(&dir, N, 0);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    // Three kills at seeded points, then a run to the end.
    for _ in 0..3 {
        let kill_after = Duration::from_millis(rng.random_range(200..1_200));
        let mut child = Command::new(env!("CARGO_BIN_EXE_marginwise"))
            .args(["--quiet", "apply", "--plan"])
            .arg(&dir)
            .args(["--endpoint", &store.url(), "--token", store.token()])
            .args(["--bulk-threshold", "1000000", "--jitter-seed", "9"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(kill_after);
        let _ = child.kill();
        let _ = child.wait();
        println!(
            "killed after {} ms: {} of {N} metafields stored",
            kill_after.as_millis(),
            store.stats().metafields_stored
        );
    }
    let mut client = client(&store, 11);
    let mut options = options(&dir);
    options.bulk_threshold = usize::MAX;
    let report = sync::apply_plan(&mut client, &dir, None, &options).unwrap();
    print_figures("after three kills", &report, &store);
    assert_store_is_the_plan(&store, &plan);
}
