//! `score` on small generated stores with one thing changed: what a run does with customers the
//! spend model cannot use, settings out of range, orders and line items it cannot attribute, and
//! bundle definitions. One regression test per audit finding.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use marginwise_engine::format::VARIANT_KEY;
use marginwise_engine::{Currency, VariantData};
use model_pipeline::generate::{DEFAULT_OPT_OUT_TAG, GeneratorConfig, generate};
use model_pipeline::ingest::{self, CUSTOMERS_FILE, IngestOptions, ORDERS_FILE, PRODUCTS_FILE};
use model_pipeline::pipeline::{self, Outcome, RunOptions};
use model_pipeline::plan::{self, PLAN_FILE, variant_gid};
use model_pipeline::progress::Progress;
use model_pipeline::score::ScoreOptions;
use serde_json::Value;

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("score")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A 300-customer sample store, generated once.
fn store() -> &'static Path {
    static STORE: OnceLock<PathBuf> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = scratch("store");
        generate(
            &GeneratorConfig {
                customers: 300,
                seed: 42,
            },
            &dir,
            Progress::hidden(),
        )
        .unwrap();
        dir
    })
}

/// A copy of the store whose orders file is `edit`ed line by line (each line parsed as JSON).
fn store_with_orders(name: &str, edit: impl Fn(&mut Vec<Value>)) -> PathBuf {
    let dir = scratch(name);
    for file in [CUSTOMERS_FILE, PRODUCTS_FILE] {
        std::fs::copy(store().join(file), dir.join(file)).unwrap();
    }
    let mut lines: Vec<Value> = std::fs::read_to_string(store().join(ORDERS_FILE))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    edit(&mut lines);
    let mut text = String::new();
    for line in &lines {
        text.push_str(&line.to_string());
        text.push('\n');
    }
    std::fs::write(dir.join(ORDERS_FILE), text).unwrap();
    dir
}

fn options() -> RunOptions {
    RunOptions {
        ingest: IngestOptions {
            opt_out_tag: Some(DEFAULT_OPT_OUT_TAG.into()),
            ..IngestOptions::default()
        },
        skip_report: true,
        ..RunOptions::default()
    }
}

fn run(input: &Path, options: &RunOptions) -> anyhow::Result<Outcome> {
    pipeline::run(input, &input.join("out"), options, Progress::hidden())
}

fn gid_number(value: &Value) -> Option<u64> {
    value.as_str()?.rsplit('/').next()?.parse().ok()
}

/// A repeat buyer (transactions on at least two days) of the sample store.
fn a_repeat_buyer() -> u64 {
    let data = ingest::read_store(store(), &options().ingest, Progress::hidden()).unwrap();
    data.customers
        .iter()
        .zip(&data.histories)
        .find(|(record, h)| !record.opted_out && h.n_transactions >= 3)
        .map(|(record, _)| record.id)
        .unwrap()
}

/// Regression (audit: one_customer_free_repeats): one repeat buyer whose orders were all free
/// stopped the whole run in the Gamma-Gamma fit with "customer 97", a position. They are left
/// out of that fit, scored with its population mean value, and named in the summary.
#[test]
fn a_repeat_buyer_whose_orders_were_all_free_is_scored_at_the_population_mean() {
    let customer = a_repeat_buyer();
    let input = store_with_orders("free-repeats", |lines| {
        let mut theirs = false;
        for line in lines.iter_mut() {
            if line.get("__parentId").is_none() {
                theirs = gid_number(&line["customer"]["id"]) == Some(customer);
            } else if theirs {
                line["originalUnitPriceSet"]["shopMoney"]["amount"] = "0.00".into();
            }
        }
    });
    let outcome = run(&input, &options()).unwrap();
    let scored = &outcome.scored;
    assert_eq!(scored.spend_fit_excluded, 1);
    assert_eq!(scored.spend_fit_excluded_examples, vec![customer]);
    let profile = scored
        .customers
        .iter()
        .find(|c| c.customer_id == customer)
        .unwrap();
    // Their expected orders times the population's mean value per order, discounted: positive,
    // and no more than the undiscounted product.
    let mean = scored.gamma_gamma.model.p * scored.gamma_gamma.model.gamma
        / (scored.gamma_gamma.model.q - 1.0);
    assert!(profile.scores.clv_12m > 0.0);
    assert!(profile.scores.clv_12m <= profile.scores.expected_orders_12m * mean * 1.000_001);
    let summary = pipeline::summary_text(&outcome);
    assert!(
        summary.contains(&format!(
            "1 repeat buyers whose repeat orders were all free are left out of the Gamma-Gamma \
             fit (it needs a positive mean value) and valued at its population mean, e.g. \
             customer {customer}"
        )),
        "{summary}"
    );
}

/// Regression (audit: NaN, inf and negative rates were accepted and went into every CLV): the
/// monthly discount rate is checked before the export is read, with the range in the message.
#[test]
fn a_monthly_discount_rate_outside_zero_to_one_is_refused_before_reading() {
    for rate in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.01, 1.0, 12.0] {
        let mut options = options();
        options.score.monthly_discount_rate = rate;
        let error = run(Path::new("/nonexistent/export"), &options).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{rate} is not a monthly discount rate: it must be at least 0 and below 1 (0.01 \
                 a month is about 12.7 % a year; a negative rate would value future orders above \
                 today's, and 1 would halve each month's value)"
            )
        );
    }
    for rate in [0.0, 0.01, 0.99] {
        let options = ScoreOptions {
            monthly_discount_rate: rate,
            ..ScoreOptions::default()
        };
        assert!(options.validate().is_ok(), "{rate}");
    }
}

/// Regression (audit: the printed summary left them out; only summary.json had them): orders of
/// customers the customers export does not have, and line items of products the products export
/// does not have, are counted on the "left out" line.
#[test]
fn the_summary_counts_orders_of_unknown_customers_and_items_of_unknown_products() {
    let input = store_with_orders("unknown-owners", |lines| {
        let order: Value = serde_json::json!({
            "id": "gid://shopify/Order/1", "createdAt": "2025-06-01T10:00:00Z",
            "processedAt": "2025-06-01T10:00:00Z", "cancelledAt": null, "test": false,
            "currencyCode": "USD", "customer": {"id": "gid://shopify/Customer/999"}
        });
        let mut item = lines
            .iter()
            .find(|line| line.get("__parentId").is_some())
            .unwrap()
            .clone();
        item["__parentId"] = "gid://shopify/Order/1".into();
        item["product"]["id"] = "gid://shopify/Product/777".into();
        let mut second = item.clone();
        second["id"] = "gid://shopify/LineItem/2".into();
        lines.extend([order, item, second]);
    });
    let outcome = run(&input, &options()).unwrap();
    let summary = pipeline::summary_text(&outcome);
    assert!(
        summary.contains(
            "1 orders of customers not in customers.jsonl (complements only), 2 line items of \
             products not in products.jsonl (in order values, not in complements)"
        ),
        "{summary}"
    );
}

/// The `$app.offer` values in a plan folder, by variant GID.
fn offers(out: &Path) -> Vec<(String, VariantData)> {
    plan::read_plan(&out.join(PLAN_FILE))
        .unwrap()
        .into_iter()
        .filter(|record| record.key == VARIANT_KEY)
        .map(|record| {
            let exponent = Currency::from_code("USD").unwrap().exponent;
            let data = VariantData::decode(&record.value, exponent).unwrap();
            (record.owner_id, data)
        })
        .collect()
}

/// Regression (audit: `score` always wrote `bundle_parent: false`, so the discount Function could
/// not keep slot offers off bundle parents): `score --bundles FILE`, the file `compile-bundles`
/// reads, flags its parents' `$app.offer` and only theirs; a file `compile-bundles` refuses is
/// refused with the same problems.
#[test]
fn score_with_bundles_flags_the_parent_variants() {
    let data = ingest::read_store(store(), &options().ingest, Progress::hidden()).unwrap();
    let variants: Vec<u64> = data.catalog.variants.iter().map(|v| v.id).collect();
    let (parent, first, second) = (variants[0], variants[1], variants[2]);
    let dir = scratch("bundles");
    let bundles = dir.join("bundles.json");
    std::fs::write(
        &bundles,
        serde_json::json!({"bundles": [
            {"parent": variant_gid(parent), "components": [
                {"variant": first, "quantity": 1, "weight": 60},
                {"variant": variant_gid(second), "quantity": 1, "weight": 40}]},
            {"parent": 4_242, "components": [{"variant": first, "quantity": 2}]}
        ]})
        .to_string(),
    )
    .unwrap();
    let out = dir.join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_marginwise"))
        .args(["--quiet", "score", "--no-report", "--input"])
        .arg(store())
        .arg("--out")
        .arg(&out)
        .arg("--bundles")
        .arg(&bundles)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains(
            "bundle parents: 1 variants flagged; not in products.jsonl (no value written): 4242"
        ),
        "{stdout}"
    );
    let offers = offers(&out);
    assert_eq!(offers.len(), variants.len());
    for (owner, data) in &offers {
        assert_eq!(
            data.bundle_parent,
            *owner == variant_gid(parent),
            "{owner}: bundle_parent {}",
            data.bundle_parent
        );
    }

    // A parent listed twice: the cart transform would skip the second, so compile-bundles
    // refuses the file, and so does score.
    std::fs::write(
        &bundles,
        serde_json::json!({"bundles": [
            {"parent": parent, "components": [{"variant": first}, {"variant": second}]},
            {"parent": parent, "components": [{"variant": first, "quantity": 2}]}
        ]})
        .to_string(),
    )
    .unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_marginwise"))
        .args(["--quiet", "score", "--no-report", "--input"])
        .arg(store())
        .arg("--out")
        .arg(dir.join("refused"))
        .arg("--bundles")
        .arg(&bundles)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        stderr.contains(&format!("reading the bundles {}", bundles.display()))
            && stderr.contains(&format!(
                "bundles[1] (parent {parent}): this parent already has a bundle earlier in the list"
            )),
        "{stderr}"
    );
    assert!(!dir.join("refused").join(PLAN_FILE).exists());
}

/// Regression (audit: `score --currency QQQ` was accepted, and the engine, which takes any three
/// capital letters, would have written the plan's money in cents of no currency): a code that is
/// not an ISO 4217 shop currency is refused before anything is read or written, from the command
/// line and from the library alike.
#[test]
fn a_currency_that_is_not_an_iso_4217_shop_currency_is_refused() {
    let dir = scratch("currency");
    for code in ["QQQ", "XAU"] {
        let run = Command::new(env!("CARGO_BIN_EXE_marginwise"))
            .args([
                "--quiet",
                "score",
                "--no-report",
                "--currency",
                code,
                "--input",
            ])
            .arg(store())
            .arg("--out")
            .arg(dir.join(code))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{code}");
        assert!(
            stderr.contains(&format!("--currency: \"{code}\" is ")),
            "{stderr}"
        );
        assert!(!dir.join(code).exists(), "{code}");
    }
    let run = Command::new(env!("CARGO_BIN_EXE_marginwise"))
        .args([
            "--quiet",
            "score",
            "--no-report",
            "--currency",
            "USD",
            "--input",
        ])
        .arg(store())
        .arg("--out")
        .arg(dir.join("USD"))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let mut given = options().ingest;
    given.currency = Currency::from_code("QQQ");
    let error = ingest::read_store(store(), &given, Progress::hidden()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the shop currency \"QQQ\" is not an ISO 4217 currency code"
    );
}

/// The state database kept away from the plan (`apply --state`, the shops file's "state"):
/// `score --state FILE` leaves that database's redacted customers out of the plan, where
/// without it the list beside the plan (none here) is all it sees.
#[test]
fn score_honours_the_suppression_list_of_the_state_it_is_given() {
    use model_pipeline::sync::state::State;
    let dir = scratch("state-elsewhere");
    let state_file = dir.join("state").join("sync-state.sqlite");
    std::fs::create_dir_all(state_file.parent().unwrap()).unwrap();
    let first = std::fs::read_to_string(store().join(CUSTOMERS_FILE))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find_map(|customer| customer["id"].as_str().map(str::to_string))
        .unwrap();
    State::open(&state_file, "marginwise-test.myshopify.com")
        .unwrap()
        .record_redacted(&first)
        .unwrap();
    let owners = |out: &Path| -> Vec<String> {
        plan::read_plan(&out.join(PLAN_FILE))
            .unwrap()
            .into_iter()
            .map(|record| record.owner_id)
            .collect()
    };
    let score = |out: &Path, state: Option<&Path>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_marginwise"));
        command
            .args(["--quiet", "score", "--no-report", "--input"])
            .arg(store())
            .arg("--out")
            .arg(out);
        if let Some(state) = state {
            command.arg("--state").arg(state);
        }
        let run = command.output().unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let summary: Value =
            serde_json::from_slice(&std::fs::read(out.join(pipeline::SUMMARY_FILE)).unwrap())
                .unwrap();
        summary["plan"]["suppressed"].as_u64().unwrap()
    };
    let without = dir.join("without");
    assert_eq!(score(&without, None), 0);
    assert!(owners(&without).contains(&first), "{first} has a profile");
    let with = dir.join("with");
    assert_eq!(score(&with, Some(&state_file)), 1);
    let kept = owners(&with);
    assert!(!kept.contains(&first), "{first} is redacted");
    assert_eq!(kept.len() + 1, owners(&without).len());
    assert!(!with.join("sync-state.sqlite").exists());
}
