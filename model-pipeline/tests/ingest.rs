//! Ingest, data-driven: every folder under `tests/ingest/` is a small export (customers, products,
//! orders; an optional `options.json` with `{"skip_bad": true}`), and its snapshot is either the
//! error message (file:line: field) or everything read: counts, histories, catalog, co-purchases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fmt::Write as _;
use std::path::Path;

use model_pipeline::ingest::{IngestOptions, StoreData, read_store};
use model_pipeline::progress::Progress;

/// 2025-01-01T00:00:00Z: "now" for every fixture (their histories are from 2024).
const FIXTURE_NOW: i64 = 1_735_689_600;

fn render(data: &StoreData) -> String {
    let mut out = String::new();
    writeln!(out, "currency: {}", data.currency.code_str()).unwrap();
    writeln!(
        out,
        "stats: {}",
        serde_json::to_string_pretty(&data.stats).unwrap()
    )
    .unwrap();
    writeln!(out, "last order time: {}", data.last_order_time).unwrap();
    for (customer, h) in data.customers.iter().zip(&data.histories) {
        writeln!(
            out,
            "customer {} opted_out={} orders_field={} | orders={} discounted={} transactions={} days={}..{} total={} first={} last_products={:?}",
            customer.id,
            customer.opted_out,
            customer.number_of_orders,
            h.n_orders,
            h.n_discounted_orders,
            h.n_transactions,
            h.first_day,
            h.last_day,
            h.total_value_minor,
            h.first_value_minor,
            h.last_order_products
        )
        .unwrap();
    }
    for v in &data.catalog.variants {
        let product = data.catalog.products[v.product as usize];
        writeln!(
            out,
            "variant {} product {} price {} cost {:?}",
            v.id, product, v.price_minor, v.unit_cost_minor
        )
        .unwrap();
    }
    let mut pairs: Vec<_> = data.co_purchase.pair_orders.iter().collect();
    pairs.sort();
    writeln!(
        out,
        "co-purchase: orders={} products={:?} pairs={:?}",
        data.co_purchase.n_orders, data.co_purchase.product_orders, pairs
    )
    .unwrap();
    out
}

fn check(dir: &Path) -> String {
    let skip_bad = std::fs::read_to_string(dir.join("options.json"))
        .ok()
        .map(|text| serde_json::from_str::<serde_json::Value>(&text).unwrap())
        .and_then(|v| v.get("skip_bad").and_then(serde_json::Value::as_bool))
        .unwrap_or(false);
    let options = IngestOptions {
        skip_bad,
        opt_out_tag: Some("marginwise-opt-out".into()),
        currency: None,
        // A fixed clock, so that the messages about orders dated after it do not change.
        now: Some(FIXTURE_NOW),
    };
    let text = match read_store(dir, &options, Progress::hidden()) {
        Ok(data) => render(&data),
        Err(error) => format!("error: {error}"),
    };
    // Paths are made relative so the snapshot does not depend on where the repo lives.
    text.replace(&format!("{}/", dir.display()), "")
}

#[test]
fn ingest_fixtures() {
    insta::glob!("ingest/*/orders.jsonl", |path| {
        let dir = path.parent().unwrap();
        insta::assert_snapshot!(check(dir));
    });
}

/// The orders of a generated store, shuffled, and concatenated twice: shuffled, every history
/// (transactions, first and last day, calibration and holdout counts, the latest order) and the
/// co-purchase counts are the same; concatenated, the second copy of every order is refused and,
/// skipped, leaves exactly the original.
#[test]
fn the_order_of_the_orders_changes_nothing_and_a_second_copy_is_refused() {
    use model_pipeline::generate::{GeneratorConfig, generate};
    use model_pipeline::ingest::{CUSTOMERS_FILE, ORDERS_FILE, PRODUCTS_FILE};
    use rand::SeedableRng;
    use rand::seq::SliceRandom;

    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ingest-order");
    let _ = std::fs::remove_dir_all(&root);
    let sorted = root.join("sorted");
    generate(
        &GeneratorConfig {
            customers: 400,
            seed: 11,
        },
        &sorted,
        Progress::hidden(),
    )
    .unwrap();
    let orders = std::fs::read_to_string(sorted.join(ORDERS_FILE)).unwrap();
    // An order line and the line items after it.
    let mut blocks: Vec<Vec<&str>> = Vec::new();
    for line in orders.lines() {
        match blocks.last_mut() {
            Some(block) if line.contains("__parentId") => block.push(line),
            _ => blocks.push(vec![line]),
        }
    }
    let copy_with_orders = |name: &str, blocks: &[Vec<&str>]| {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for file in [CUSTOMERS_FILE, PRODUCTS_FILE] {
            std::fs::copy(sorted.join(file), dir.join(file)).unwrap();
        }
        let mut text = String::new();
        for line in blocks.iter().flatten() {
            text.push_str(line);
            text.push('\n');
        }
        std::fs::write(dir.join(ORDERS_FILE), text).unwrap();
        dir
    };
    let mut shuffled_blocks = blocks.clone();
    shuffled_blocks.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
    let shuffled = copy_with_orders("shuffled", &shuffled_blocks);
    let doubled_blocks: Vec<Vec<&str>> = blocks.iter().chain(&shuffled_blocks).cloned().collect();
    let doubled = copy_with_orders("doubled", &doubled_blocks);

    let read = |dir: &Path, skip_bad: bool| {
        let options = IngestOptions {
            skip_bad,
            opt_out_tag: Some("marginwise-opt-out".into()),
            currency: None,
            now: Some(FIXTURE_NOW + 3 * 365 * 86_400),
        };
        read_store(dir, &options, Progress::hidden())
    };
    let same = |a: &StoreData, b: &StoreData| {
        assert_eq!(a.histories.len(), b.histories.len());
        for ((customer, x), y) in a.customers.iter().zip(&a.histories).zip(&b.histories) {
            assert_eq!(x, y, "customer {}", customer.id);
        }
        assert_eq!(a.cutoff_day, b.cutoff_day);
        assert_eq!(a.last_order_time, b.last_order_time);
        assert_eq!(a.co_purchase.product_orders, b.co_purchase.product_orders);
        assert_eq!(a.co_purchase.pair_orders, b.co_purchase.pair_orders);
    };
    let original = read(&sorted, false).unwrap();
    assert!(original.histories.iter().any(|h| h.n_transactions > 2));
    same(&original, &read(&shuffled, false).unwrap());

    let error = read(&doubled, false).unwrap_err().to_string();
    // The first duplicate is the first order of the second copy.
    let first_duplicate = orders.lines().count() + 1;
    assert!(
        error.contains(&format!(
            "{ORDERS_FILE}:{first_duplicate}: field `id`: duplicate order"
        )) && error.contains("already on line"),
        "{error}"
    );
    let skipped = read(&doubled, true).unwrap();
    same(&original, &skipped);
    assert_eq!(skipped.stats.bad_lines, blocks.len() as u64);
    assert_eq!(skipped.stats.orders, original.stats.orders);
    assert_eq!(skipped.stats.line_items, original.stats.line_items);
}
