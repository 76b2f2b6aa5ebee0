//! `marginwise measure`: the split is the engine's, the margins are the hand-computed ones, what
//! is left out is counted, and a bundle policy holding out other customers is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use marginwise_engine::holdout;
use marginwise_engine::policy::Holdout;
use model_pipeline::generate::{self, GeneratorConfig};
use model_pipeline::ingest::{self, IngestOptions};
use model_pipeline::measure::{self, MeasureError};
use model_pipeline::progress::Progress;

const SAMPLE_POLICY: &str = include_str!("../sample/policy.json");
const SAMPLE_BUNDLE_POLICY: &str = include_str!("../sample/bundle-policy.json");

fn customer_line(id: u64) -> String {
    format!(
        "{{\"id\":\"gid:\\/\\/shopify\\/Customer\\/{id}\",\"createdAt\":\"2024-01-02T09:00:00Z\",\
         \"numberOfOrders\":\"1\",\"amountSpent\":{{\"amount\":\"0.00\",\"currencyCode\":\"USD\"}},\
         \"tags\":[],\"dataSaleOptOut\":false}}\n"
    )
}

fn order_line(id: u64, customer: Option<u64>, at: &str, cancelled: bool) -> String {
    let customer = match customer {
        None => "null".to_string(),
        Some(c) => format!("{{\"id\":\"gid:\\/\\/shopify\\/Customer\\/{c}\"}}"),
    };
    let cancelled = if cancelled {
        format!("\"{at}\"")
    } else {
        "null".into()
    };
    format!(
        "{{\"id\":\"gid:\\/\\/shopify\\/Order\\/{id}\",\"createdAt\":\"{at}\",\"processedAt\":\"{at}\",\
         \"cancelledAt\":{cancelled},\"test\":false,\"currencyCode\":\"USD\",\"customer\":{customer}}}\n"
    )
}

fn item_line(
    line: u64,
    order: u64,
    variant: u64,
    quantity: i64,
    price: &str,
    discount: &str,
) -> String {
    format!(
        "{{\"id\":\"gid:\\/\\/shopify\\/LineItem\\/{line}\",\"quantity\":{quantity},\
         \"variant\":{{\"id\":\"gid:\\/\\/shopify\\/ProductVariant\\/{variant}\"}},\
         \"product\":{{\"id\":\"gid:\\/\\/shopify\\/Product\\/10\"}},\
         \"originalUnitPriceSet\":{{\"shopMoney\":{{\"amount\":\"{price}\",\"currencyCode\":\"USD\"}}}},\
         \"discountAllocations\":[{{\"allocatedAmountSet\":{{\"shopMoney\":{{\"amount\":\"{discount}\",\
         \"currencyCode\":\"USD\"}}}}}}],\"__parentId\":\"gid:\\/\\/shopify\\/Order\\/{order}\"}}\n"
    )
}

const PRODUCTS: &str = concat!(
    "{\"id\":\"gid:\\/\\/shopify\\/Product\\/10\"}\n",
    "{\"id\":\"gid:\\/\\/shopify\\/ProductVariant\\/11\",\"price\":\"20.00\",\"inventoryItem\":{\"unitCost\":{\"amount\":\"8.00\",\"currencyCode\":\"USD\"}},\"__parentId\":\"gid:\\/\\/shopify\\/Product\\/10\"}\n",
    "{\"id\":\"gid:\\/\\/shopify\\/ProductVariant\\/12\",\"price\":\"22.00\",\"inventoryItem\":{\"unitCost\":null},\"__parentId\":\"gid:\\/\\/shopify\\/Product\\/10\"}\n",
);

/// Two held-out and three treated customers (the first ids the engine puts in each group).
fn tiny_store(dir: &Path, policy: &Holdout) -> ([u64; 2], [u64; 3]) {
    let held: Vec<u64> = (1..)
        .filter(|id| measure::held_out(*id, policy))
        .take(2)
        .collect();
    let treated: Vec<u64> = (1..)
        .filter(|id| !measure::held_out(*id, policy))
        .take(3)
        .collect();
    let (h1, h2) = (held[0], held[1]);
    let (t1, t2, t3) = (treated[0], treated[1], treated[2]);
    let mut customers = String::new();
    for id in [h1, h2, t1, t2, t3] {
        customers.push_str(&customer_line(id));
    }
    let mut orders = String::new();
    let at = "2025-02-01T10:00:00Z";
    // H1: 2 x 20.00, cost 8.00 each: margin 24.00.
    orders.push_str(&order_line(100, Some(h1), at, false));
    orders.push_str(&item_line(1, 100, 11, 2, "20.00", "0.00"));
    // H1 before --since: left out.
    orders.push_str(&order_line(101, Some(h1), "2024-12-31T23:59:59Z", false));
    orders.push_str(&item_line(2, 101, 11, 1, "20.00", "0.00"));
    // H2: 20.00 - 2.00 - 8.00 = 10.00, plus a line of unknown cost (22.00) left out.
    orders.push_str(&order_line(102, Some(h2), at, false));
    orders.push_str(&item_line(3, 102, 11, 1, "20.00", "2.00"));
    orders.push_str(&item_line(4, 102, 12, 1, "22.00", "0.00"));
    // T1: 60.00 - 6.00 - 24.00 = 30.00.
    orders.push_str(&order_line(103, Some(t1), at, false));
    orders.push_str(&item_line(5, 103, 11, 3, "20.00", "6.00"));
    // T2: 20.00 - 5.00 - 8.00 = 7.00.
    orders.push_str(&order_line(104, Some(t2), at, false));
    orders.push_str(&item_line(6, 104, 11, 1, "20.00", "5.00"));
    // A guest order, a cancelled order and an order of a customer not in the export: left out.
    orders.push_str(&order_line(105, None, at, false));
    orders.push_str(&item_line(7, 105, 11, 5, "20.00", "0.00"));
    orders.push_str(&order_line(106, Some(t1), at, true));
    orders.push_str(&item_line(8, 106, 11, 5, "20.00", "0.00"));
    orders.push_str(&order_line(107, Some(999_999_999), at, false));
    orders.push_str(&item_line(9, 107, 11, 5, "20.00", "0.00"));
    // T3 has no order at all: still counted, with a margin of 0.
    std::fs::write(dir.join("customers.jsonl"), customers).unwrap();
    std::fs::write(dir.join("products.jsonl"), PRODUCTS).unwrap();
    std::fs::write(dir.join("orders.jsonl"), orders).unwrap();
    ([h1, h2], [t1, t2, t3])
}

#[test]
fn a_tiny_store_gives_the_hand_computed_margins() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Holdout {
        share_bps: 5_000,
        salt: "tiny".into(),
    };
    tiny_store(dir.path(), &policy);
    let since = measure::parse_since("2025-01-01").unwrap();
    let m = measure::measure(dir.path(), &policy, since, Progress::new(true)).unwrap();

    let h = &m.holdout;
    assert_eq!((h.customers, h.customers_with_orders, h.orders), (2, 2, 2));
    assert_eq!(
        (
            h.revenue_minor,
            h.discounts_minor,
            h.cost_minor,
            h.margin_minor
        ),
        (6_000, 200, 2_400, 3_400)
    );
    let t = &m.treated;
    assert_eq!((t.customers, t.customers_with_orders, t.orders), (3, 2, 2));
    assert_eq!(
        (
            t.revenue_minor,
            t.discounts_minor,
            t.cost_minor,
            t.margin_minor
        ),
        (8_000, 1_100, 3_200, 3_700)
    );
    // Holdout margins 2400 and 1000: mean 1700, variance 980000, SE^2 490000.
    assert!((h.mean_margin_minor - 1_700.0).abs() < 1e-9);
    assert!((h.mean_margin_se_minor - 700.0).abs() < 1e-9);
    // Treated margins 3000, 700, 0: mean 3700/3, variance 14780000/6 (n - 1 = 2), SE^2 that / 3.
    let treated_se2 = 14_780_000.0 / 6.0 / 3.0;
    assert!((t.mean_margin_minor - 3_700.0 / 3.0).abs() < 1e-9);
    assert!((t.mean_margin_se_minor - f64::sqrt(treated_se2)).abs() < 1e-9);
    let d = &m.difference_per_customer;
    let se = f64::sqrt(490_000.0 + treated_se2);
    assert!((d.value_minor - (3_700.0 / 3.0 - 1_700.0)).abs() < 1e-9);
    assert!((d.se_minor - se).abs() < 1e-9);
    assert!((d.low_minor - (d.value_minor - 1.959_964 * se)).abs() < 1e-3);
    assert!((d.high_minor - (d.value_minor + 1.959_964 * se)).abs() < 1e-3);
    let i = &m.incremental_margin;
    assert!((i.value_minor - (3_700.0 - 3.0 * 1_700.0)).abs() < 1e-9);
    assert!((i.low_minor - 3.0 * d.low_minor).abs() < 1e-6);

    let l = &m.left_out;
    assert_eq!(l.orders_before_since, 1);
    assert_eq!(l.guest_orders, 1);
    assert_eq!(l.cancelled_or_test_orders, 1);
    assert_eq!(l.orders_of_unknown_customers, 1);
    assert_eq!(l.lines_of_unknown_cost, 1);
    assert_eq!(l.revenue_of_unknown_cost_lines_minor, 2_200);
    assert!(m.limits.iter().any(|s| s.contains("shipping")));

    // Moving --since back a day brings H1's earlier order (margin 12.00) in.
    let earlier = measure::parse_since("2024-12-31").unwrap();
    let m = measure::measure(dir.path(), &policy, earlier, Progress::new(true)).unwrap();
    assert_eq!(m.left_out.orders_before_since, 0);
    assert_eq!((m.holdout.orders, m.holdout.margin_minor), (3, 4_600));

    let out = dir.path().join("out");
    let path = measure::write(&out, &m).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(json["holdout"]["margin_minor"], 4_600);
    assert_eq!(json["left_out"]["guest_orders"], 1);
    let table = measure::table(&m).join("\n");
    assert!(
        table.contains("| holdout | 2 | 2 | 3 | 80.00 | 2.00 | 32.00 | 46.00 |"),
        "{table}"
    );
    assert!(table.contains("shipping is not in the export"), "{table}");
}

#[test]
fn the_split_is_the_engines_and_keeps_the_share_on_a_generated_store() {
    let dir = tempfile::tempdir().unwrap();
    generate::generate(
        &GeneratorConfig {
            customers: 4_000,
            seed: 7,
        },
        dir.path(),
        Progress::new(true),
    )
    .unwrap();
    let policy = Holdout {
        share_bps: 2_000,
        salt: "gen".into(),
    };
    let store =
        ingest::read_store(dir.path(), &IngestOptions::default(), Progress::new(true)).unwrap();
    let mut held = 0_u64;
    for customer in &store.customers {
        let gid = format!("gid://shopify/Customer/{}", customer.id);
        let engine = holdout::is_held_out(&gid, "gen", 2_000);
        assert_eq!(measure::held_out(customer.id, &policy), engine, "{gid}");
        held += u64::from(engine);
    }
    let n = store.customers.len() as u64;
    assert_eq!(n, 4_000);
    // Binomial(4000, 0.2): SD 25.3 customers; 4 SD either side.
    assert!((held as i64 - 800).abs() <= 101, "held out {held} of {n}");

    let m = measure::measure(dir.path(), &policy, 0, Progress::new(true)).unwrap();
    assert_eq!(m.holdout.customers, held);
    assert_eq!(m.treated.customers, n - held);
    assert!(m.holdout.orders > 0 && m.treated.orders > 0);
    assert!(m.left_out.guest_orders > 0);
}

#[test]
fn a_policy_without_holdout_is_refused() {
    let sample = include_str!("../sample/policy.json");
    let holdout = measure::policy_holdout(sample).unwrap();
    assert_eq!(holdout.share_bps, 1_000);
    let without: serde_json::Value = {
        let mut value: serde_json::Value = serde_json::from_str(sample).unwrap();
        value.as_object_mut().unwrap().remove("holdout");
        value
    };
    let error = measure::policy_holdout(&without.to_string()).unwrap_err();
    assert!(matches!(error, MeasureError::NoHoldout));
    assert!(error.to_string().contains("no usable holdout"), "{error}");
    let mut message = String::new();
    let _ = write!(message, "{}", measure::policy_holdout("{").unwrap_err());
    assert!(message.contains("cannot be read"), "{message}");
}

/// Runs `marginwise measure` on a tiny store held out by the sample policy, with `--bundle-policy`
/// holding `bundle_policy` when given; returns the run and the output folder.
fn measure_cli(name: &str, bundle_policy: Option<&str>) -> (std::process::Output, PathBuf) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("measure_cli")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let policy = measure::policy_holdout(SAMPLE_POLICY).unwrap();
    tiny_store(&dir, &policy);
    let out = dir.join("out");
    let mut command = Command::new(env!("CARGO_BIN_EXE_marginwise"));
    command
        .args(["--quiet", "measure", "--since", "2025-01-01", "--input"])
        .arg(&dir)
        .arg("--policy")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("sample/policy.json"))
        .arg("--out")
        .arg(&out);
    if let Some(bundle_policy) = bundle_policy {
        let file = dir.join("bundle-policy.json");
        std::fs::write(&file, bundle_policy).unwrap();
        command.arg("--bundle-policy").arg(file);
    }
    (command.output().unwrap(), out)
}

/// Regression (`measure` compared a holdout group the cart transform may have given bundle
/// discounts to): a bundle policy with another holdout is refused, before anything is written.
#[test]
fn measure_refuses_a_bundle_policy_with_another_holdout() {
    let bundle = SAMPLE_BUNDLE_POLICY.replace("\"sample-2026\"", "\"bundles-2026\"");
    assert_ne!(bundle, SAMPLE_BUNDLE_POLICY);
    let (run, out) = measure_cli("mismatch", Some(&bundle));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "{stderr}");
    assert!(
        stderr.starts_with("error: the holdouts differ: the offers policy ")
            && stderr
                .contains("sample/policy.json has holdout share_bps 1000, salt \"sample-2026\"")
            && stderr
                .contains("bundle-policy.json has holdout share_bps 1000, salt \"bundles-2026\"")
            && stderr.contains("contaminated holdout group"),
        "{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout), "");
    assert!(!out.join(measure::MEASURE_FILE).exists());

    // No holdout in the bundle policy: the offers holdout group got bundle discounts.
    let mut without: serde_json::Value = serde_json::from_str(SAMPLE_BUNDLE_POLICY).unwrap();
    without.as_object_mut().unwrap().remove("holdout").unwrap();
    let (run, _) = measure_cli("absent", Some(&without.to_string()));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "{stderr}");
    assert!(
        stderr.contains("bundle-policy.json has no holdout;"),
        "{stderr}"
    );
}

#[test]
fn measure_says_whether_the_bundle_policy_was_checked() {
    let (run, out) = measure_cli("checked", Some(SAMPLE_BUNDLE_POLICY));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.lines().any(|line| line.starts_with("bundle policy ")
            && line.ends_with("bundle-policy.json: same holdout")),
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(measure::MEASURE_FILE)).unwrap())
            .unwrap();
    assert!(
        json["bundle_policy"]
            .as_str()
            .unwrap()
            .ends_with("bundle-policy.json"),
        "{json}"
    );

    let (run, out) = measure_cli("unchecked", None);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success());
    assert!(
        stdout.contains(
            "bundle policy: not checked (--bundle-policy FILE checks that the cart transform \
             holds out the same customers)"
        ),
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(measure::MEASURE_FILE)).unwrap())
            .unwrap();
    assert!(json["bundle_policy"].is_null(), "{json}");
}

/// `measure --discount GID` measures the holdout of the policy the discount holds (here changed
/// on the store after the file was written): the same measurement as from a file of that policy,
/// and another than from the stale file.
#[test]
fn measure_reads_the_policy_in_force_from_the_discount() {
    use local_store::{Config, LocalStore};

    let store = LocalStore::start(Config::default()).unwrap();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("measure_cli")
        .join("from-discount");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let marginwise = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_marginwise"))
            .arg("--quiet")
            .args(args)
            .args(["--endpoint", &store.url(), "--token", store.token()])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    };
    let stale = dir.join("stale.json");
    std::fs::write(&stale, SAMPLE_POLICY).unwrap();
    marginwise(&["discount", "--policy", stale.to_str().unwrap()]);
    let id = store.discounts()[0].id.clone();
    let mut in_force: serde_json::Value = serde_json::from_str(SAMPLE_POLICY).unwrap();
    in_force["holdout"] = serde_json::json!({ "share_bps": 5000, "salt": "changed-in-admin" });
    let in_force_file = dir.join("in-force.json");
    std::fs::write(&in_force_file, in_force.to_string()).unwrap();
    marginwise(&[
        "discount",
        "--update",
        &id,
        "--policy",
        in_force_file.to_str().unwrap(),
    ]);

    let export = dir.join("export");
    std::fs::create_dir_all(&export).unwrap();
    tiny_store(
        &export,
        &measure::policy_holdout(&in_force.to_string()).unwrap(),
    );
    let run = |source: [&str; 2], out: &str| {
        let out = dir.join(out);
        marginwise(&[
            "measure",
            "--since",
            "2025-01-01",
            "--input",
            export.to_str().unwrap(),
            source[0],
            source[1],
            "--out",
            out.to_str().unwrap(),
        ]);
        std::fs::read_to_string(out.join("measure.json")).unwrap()
    };
    let from_discount = run(["--discount", &id], "from-discount");
    let from_file = run(["--policy", in_force_file.to_str().unwrap()], "from-file");
    let from_stale = run(["--policy", stale.to_str().unwrap()], "from-stale");
    assert_eq!(from_discount, from_file);
    assert!(
        from_discount.contains("\"salt\": \"changed-in-admin\""),
        "{from_discount}"
    );
    assert_ne!(from_discount, from_stale);
}
