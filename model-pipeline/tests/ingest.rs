//! Ingest, data-driven: every folder under `tests/ingest/` is a small export (customers, products,
//! orders; an optional `options.json` with `{"skip_bad": true}`), and its snapshot is either the
//! error message (file:line: field) or everything read: counts, histories, catalog, co-purchases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fmt::Write as _;
use std::path::Path;

use model_pipeline::ingest::{IngestOptions, StoreData, read_store};
use model_pipeline::progress::Progress;

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
