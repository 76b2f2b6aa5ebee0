//! A deterministic sample store: catalog, customers and two years of orders, written as the same
//! bulk-operation JSONL the pipeline reads from Shopify (see [`crate::ingest`]).
//!
//! Customers buy the way the repeat-buying literature says they do (and the way BG/NBD assumes,
//! so a fit on this data has a known truth to approach): each customer has their own purchase
//! rate (gamma-distributed across customers), after every purchase they drop out for good with
//! their own probability (beta-distributed), and they join at a uniform time over the two years.
//! Basket sizes and discount habits differ per customer. A fifth of the catalog has a planted
//! complementary product that is often bought in the same order, which the complements step must
//! find. Some variants have no unit cost, some orders are guest orders, cancelled or discounted,
//! and a few customers opted out of data sale or carry the opt-out tag. The first planted pairs
//! are also sold as a bundle: a bundle product (never ordered yet) whose variant is the parent of
//! a definition in `bundles.json` beside the JSONL, the file `score --bundles` and
//! `compile-bundles` read.
//!
//! Everything is drawn from ChaCha8 streams seeded per customer and per order, so the output is
//! byte-identical for a seed whatever the number of threads; nothing is committed to the repo.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use marginwise_engine::money::format_decimal_minor;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Exp, Gamma, LogNormal, Poisson};
use rayon::prelude::*;

use crate::ingest::records::format_timestamp;
use crate::ingest::{CUSTOMERS_FILE, ORDERS_FILE, PRODUCTS_FILE};
use crate::progress::Progress;

/// The merchant's opt-out tag the sample store uses (and the CLI's default).
pub const DEFAULT_OPT_OUT_TAG: &str = "marginwise-opt-out";

/// 2024-01-01T00:00:00Z: the sample history runs two years from here.
const HISTORY_START: i64 = 1_704_067_200;
const HISTORY_DAYS: i64 = 731;
const WEEK_SECONDS: f64 = 7.0 * 86_400.0;

/// Gid number bases: realistic-looking, distinct per resource.
const CUSTOMER_BASE: u64 = 7_100_000_000;
const PRODUCT_BASE: u64 = 8_200_000_000;
const VARIANT_BASE: u64 = 44_000_000_000;
const ORDER_BASE: u64 = 5_600_000_000;
const LINE_ITEM_BASE: u64 = 14_000_000_000;

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("cannot write {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid generator parameter: {0}")]
    Parameter(String),
}

/// The bundle definitions written beside the JSONL (the format of `marginwise compile-bundles`).
pub const BUNDLES_FILE: &str = "bundles.json";
/// How many planted pairs are also sold as a bundle.
const SAMPLE_BUNDLES: usize = 2;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    pub customers: u32,
    pub seed: u64,
}

/// What was generated, with the truth the tests check the pipeline against.
#[derive(Debug, Clone, Default)]
pub struct GeneratedStore {
    pub customers: u64,
    pub products: u64,
    pub variants: u64,
    pub orders: u64,
    pub line_items: u64,
    pub bytes: u64,
    /// Planted complementary pairs (product gid numbers).
    pub planted_pairs: Vec<(u64, u64)>,
    /// Bundle products written (their definitions are in [`BUNDLES_FILE`]).
    pub bundles: u64,
}

struct Product {
    id: u64,
    variants: Vec<Variant>,
    partner: Option<usize>,
}

struct Variant {
    id: u64,
    price_minor: i64,
    unit_cost_minor: Option<i64>,
}

struct Catalog {
    products: Vec<Product>,
    popularity: WeightedIndex<f64>,
}

/// One simulated customer (the draws the orders need later).
struct CustomerSim {
    created_at: i64,
    order_times: Vec<i64>,
    basket_mean: f64,
    discount_propensity: f64,
    data_sale_opt_out: bool,
    tags: &'static [&'static str],
}

/// An order to write: sorted by time, basket drawn from its own seed when written.
#[derive(Clone, Copy)]
struct PlannedOrder {
    time: i64,
    /// Customer index, or `u32::MAX` for a guest order.
    customer: u32,
    sequence: u32,
}

fn stream(seed: u64, a: u64, b: u64) -> ChaCha8Rng {
    // SplitMix64-style mixing so neighbouring (a, b) pairs get unrelated streams.
    let mut z =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ChaCha8Rng::seed_from_u64(z ^ (z >> 31))
}

fn param<T, E: std::fmt::Display>(result: Result<T, E>) -> Result<T, GenerateError> {
    result.map_err(|e| GenerateError::Parameter(e.to_string()))
}

fn build_catalog(n_customers: u32, seed: u64) -> Result<Catalog, GenerateError> {
    // Roughly one product per 200 customers, within what a real small-to-large store carries.
    let n_products = (n_customers / 200).clamp(40, 2_000) as usize;
    let mut rng = stream(seed, u64::MAX, 0);
    let price = param(LogNormal::new(30f64.ln(), 0.6))?;
    let mut products = Vec::with_capacity(n_products);
    let mut variant_id = VARIANT_BASE;
    for index in 0..n_products {
        let base_dollars = price.sample(&mut rng).clamp(4.0, 400.0).round() as i64;
        let n_variants = rng.random_range(1..=3);
        let mut variants = Vec::with_capacity(n_variants);
        for k in 0..n_variants {
            let price_minor = (base_dollars + 5 * k as i64) * 100 - 1;
            // About 7 % of variants have no cost in Shopify: the guard must handle them.
            let unit_cost_minor = (!rng.random_bool(0.07))
                .then(|| (price_minor as f64 * rng.random_range(0.30..0.65)).round() as i64);
            variants.push(Variant {
                id: variant_id,
                price_minor,
                unit_cost_minor,
            });
            variant_id += 1;
        }
        products.push(Product {
            id: PRODUCT_BASE + index as u64,
            variants,
            partner: None,
        });
    }
    // Planted complements: the most popular fifth of the catalog each gets a partner from the
    // middle of the popularity ranking (a phone and its case, not two best sellers).
    let n_anchors = n_products / 5;
    for anchor in 0..n_anchors {
        let partner = n_products / 2 + anchor;
        if let Some(product) = products.get_mut(anchor).filter(|_| partner < n_products) {
            product.partner = Some(partner);
        }
    }
    // Zipf-like popularity over the catalog order.
    let weights: Vec<f64> = (0..n_products)
        .map(|rank| 1.0 / (rank as f64 + 1.0).powf(0.9))
        .collect();
    let popularity = param(WeightedIndex::new(weights))?;
    Ok(Catalog {
        products,
        popularity,
    })
}

fn simulate_customer(index: u32, seed: u64) -> Result<CustomerSim, GenerateError> {
    let mut rng = stream(seed, u64::from(index), 1);
    // Heterogeneous purchase rates per week (gamma, mean about 0.09/week = 4.9 a year while
    // alive) and dropout probabilities after each purchase (beta, mean 0.25).
    let rate = param(Gamma::<f64>::new(0.75, 1.0 / 8.0))?
        .sample(&mut rng)
        .max(1e-4);
    let dropout = param(Beta::new(0.9, 2.7))?.sample(&mut rng);
    let start = HISTORY_START as f64;
    let end = (HISTORY_START + HISTORY_DAYS * 86_400) as f64;
    let joined = rng.random_range(start..end);
    let created_at = joined as i64 - rng.random_range(0..7_200);
    let mut order_times = Vec::new();
    // One in twenty customers signs up and never orders.
    if !rng.random_bool(0.05) {
        let gap = param(Exp::new(rate))?;
        let mut t = joined;
        loop {
            order_times.push(t as i64);
            if order_times.len() >= 200 || rng.random_bool(dropout) {
                break;
            }
            t += gap.sample(&mut rng) * WEEK_SECONDS;
            if t >= end {
                break;
            }
        }
    }
    let basket_mean = param(Gamma::new(2.0, 0.35))?.sample(&mut rng);
    let discount_propensity = param(Beta::new(0.6, 2.4))?.sample(&mut rng);
    let data_sale_opt_out = rng.random_bool(0.01);
    let tags: &'static [&'static str] = match rng.random_range(0..1000) {
        0..=4 => &[DEFAULT_OPT_OUT_TAG],
        5..=300 => &["newsletter"],
        301..=330 => &["newsletter", "wholesale"],
        _ => &[],
    };
    Ok(CustomerSim {
        created_at,
        order_times,
        basket_mean,
        discount_propensity,
        data_sale_opt_out,
        tags,
    })
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> GenerateError + '_ {
    move |source| GenerateError::Io {
        file: path.display().to_string(),
        source,
    }
}

/// A GID with escaped slashes, as Shopify's JSONL writes it.
fn gid(out: &mut String, kind: &str, number: u64) {
    let _ = write!(out, "\"gid:\\/\\/shopify\\/{kind}\\/{number}\"");
}

fn money(out: &mut String, minor: i64) {
    let _ = write!(
        out,
        "{{\"amount\":\"{}\",\"currencyCode\":\"USD\"}}",
        format_decimal_minor(minor, 2)
    );
}

/// Writes the sample store into `dir` (created if needed).
pub fn generate(
    config: &GeneratorConfig,
    dir: &Path,
    progress: Progress,
) -> Result<GeneratedStore, GenerateError> {
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let catalog = build_catalog(config.customers, config.seed)?;
    let mut store = GeneratedStore {
        customers: u64::from(config.customers),
        products: catalog.products.len() as u64,
        ..GeneratedStore::default()
    };
    for product in &catalog.products {
        if let Some(partner) = product.partner.and_then(|p| catalog.products.get(p)) {
            store.planted_pairs.push((product.id, partner.id));
        }
    }

    let bar = progress.items("simulate", u64::from(config.customers));
    let customers: Vec<CustomerSim> = (0..config.customers)
        .into_par_iter()
        .map(|i| {
            let sim = simulate_customer(i, config.seed);
            if i % 4096 == 0 {
                bar.inc(4096);
            }
            sim
        })
        .collect::<Result<_, _>>()?;
    bar.finish_and_clear();

    let mut planned: Vec<PlannedOrder> = Vec::new();
    for (index, sim) in customers.iter().enumerate() {
        for (sequence, time) in sim.order_times.iter().enumerate() {
            planned.push(PlannedOrder {
                time: *time,
                customer: index as u32,
                sequence: sequence as u32,
            });
        }
    }
    // Guest checkouts: about 3 orders per 100 customers, spread over the history.
    let mut guest_rng = stream(config.seed, u64::MAX, 2);
    for sequence in 0..config.customers / 33 {
        planned.push(PlannedOrder {
            time: HISTORY_START + guest_rng.random_range(0..HISTORY_DAYS * 86_400),
            customer: u32::MAX,
            sequence,
        });
    }
    planned.sort_by_key(|o| (o.time, o.customer, o.sequence));

    write_products(
        &catalog,
        &dir.join(PRODUCTS_FILE),
        &dir.join(BUNDLES_FILE),
        &mut store,
    )?;
    let spent = write_orders(
        &catalog,
        &customers,
        &planned,
        config.seed,
        &dir.join(ORDERS_FILE),
        &mut store,
        progress,
    )?;
    write_customers(&customers, &spent, &dir.join(CUSTOMERS_FILE), &mut store)?;
    Ok(store)
}

fn write_products(
    catalog: &Catalog,
    path: &Path,
    bundles_path: &Path,
    store: &mut GeneratedStore,
) -> Result<(), GenerateError> {
    let mut out = String::new();
    let mut write_product = |out: &mut String, product: &Product| {
        out.push_str("{\"id\":");
        gid(out, "Product", product.id);
        out.push_str("}\n");
        for variant in &product.variants {
            out.push_str("{\"id\":");
            gid(out, "ProductVariant", variant.id);
            let _ = write!(
                out,
                ",\"price\":\"{}\",\"inventoryItem\":{{\"unitCost\":",
                format_decimal_minor(variant.price_minor, 2)
            );
            match variant.unit_cost_minor {
                Some(cost) => money(out, cost),
                None => out.push_str("null"),
            }
            out.push_str("},\"__parentId\":");
            gid(out, "Product", product.id);
            out.push_str("}\n");
            store.variants += 1;
        }
    };
    for product in &catalog.products {
        write_product(&mut out, product);
    }
    let (bundle_products, definitions) = sample_bundles(catalog);
    for product in &bundle_products {
        write_product(&mut out, product);
    }
    store.products += bundle_products.len() as u64;
    store.bundles = bundle_products.len() as u64;
    store.bytes += out.len() as u64;
    std::fs::write(path, out).map_err(io_error(path))?;
    let mut text = serde_json::to_string_pretty(&serde_json::json!({ "bundles": definitions }))
        .map_err(|e| GenerateError::Parameter(e.to_string()))?;
    text.push('\n');
    std::fs::write(bundles_path, text).map_err(io_error(bundles_path))
}

/// The first [`SAMPLE_BUNDLES`] planted pairs whose first variants have a known cost, as
/// bundles: a product whose one variant (the parent) is priced at the two variants' prices
/// together, at their costs together, and the definitions, each component weighted by its price.
fn sample_bundles(catalog: &Catalog) -> (Vec<Product>, Vec<serde_json::Value>) {
    let first_variant = catalog
        .products
        .iter()
        .flat_map(|p| p.variants.iter().map(|v| v.id))
        .max()
        .unwrap_or(VARIANT_BASE)
        + 1;
    let first_product = PRODUCT_BASE + catalog.products.len() as u64;
    // Pairs whose two variants have a known cost: a bundle the guard can price (one of unknown
    // cost is never discounted, which is not what a sample should show).
    let pairs = catalog.products.iter().filter_map(|anchor| {
        let partner = catalog.products.get(anchor.partner?)?;
        let (first, second) = (anchor.variants.first()?, partner.variants.first()?);
        (first.unit_cost_minor.is_some() && second.unit_cost_minor.is_some())
            .then_some((first, second))
    });
    let mut products = Vec::new();
    let mut definitions = Vec::new();
    for (offset, (first, second)) in (0..).zip(pairs.take(SAMPLE_BUNDLES)) {
        let parent = Variant {
            id: first_variant + offset,
            price_minor: first.price_minor + second.price_minor,
            unit_cost_minor: first
                .unit_cost_minor
                .zip(second.unit_cost_minor)
                .map(|(a, b)| a + b),
        };
        let component = |v: &Variant| {
            serde_json::json!({
                "variant": format!("gid://shopify/ProductVariant/{}", v.id),
                "quantity": 1,
                "weight": v.price_minor.clamp(1, marginwise_engine::format::MAX_BUNDLE_WEIGHT),
            })
        };
        definitions.push(serde_json::json!({
            "parent": format!("gid://shopify/ProductVariant/{}", parent.id),
            "components": [component(first), component(second)],
        }));
        products.push(Product {
            id: first_product + offset,
            variants: vec![parent],
            partner: None,
        });
    }
    (products, definitions)
}

/// Writes the orders in time order; returns each customer's amount spent.
fn write_orders(
    catalog: &Catalog,
    customers: &[CustomerSim],
    planned: &[PlannedOrder],
    seed: u64,
    path: &Path,
    store: &mut GeneratedStore,
    progress: Progress,
) -> Result<Vec<i64>, GenerateError> {
    const CHUNK: usize = 20_000;
    let file = File::create(path).map_err(io_error(path))?;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    let mut spent = vec![0i64; customers.len()];
    let bar = progress.items("orders", planned.len() as u64);
    for (chunk_index, chunk) in planned.chunks(CHUNK).enumerate() {
        // Each chunk is formatted in parallel per order, then written in order; line item ids
        // are assigned afterwards from the running count so they do not depend on threads.
        let formatted: Vec<(String, i64)> = chunk
            .par_iter()
            .enumerate()
            .map(|(offset, order)| {
                let order_number = (chunk_index * CHUNK + offset) as u64;
                format_order(catalog, customers, order, order_number, seed)
            })
            .collect::<Result<_, _>>()?;
        for ((text, value), order) in formatted.into_iter().zip(chunk) {
            // Line item ids are placeholders `#LI#` filled with the running count.
            let mut rest = text.as_str();
            while let Some(at) = rest.find("#LI#") {
                let (head, tail) = rest.split_at(at);
                writer.write_all(head.as_bytes()).map_err(io_error(path))?;
                write!(writer, "{}", LINE_ITEM_BASE + store.line_items).map_err(io_error(path))?;
                store.line_items += 1;
                rest = tail.get(4..).unwrap_or_default();
            }
            writer.write_all(rest.as_bytes()).map_err(io_error(path))?;
            store.bytes += text.len() as u64;
            store.orders += 1;
            if let Some(total) = spent.get_mut(order.customer as usize) {
                *total += value;
            }
        }
        bar.inc(chunk.len() as u64);
    }
    writer.flush().map_err(io_error(path))?;
    bar.finish_and_clear();
    Ok(spent)
}

/// One order and its line items as JSONL; returns the text and the order's value.
fn format_order(
    catalog: &Catalog,
    customers: &[CustomerSim],
    order: &PlannedOrder,
    order_number: u64,
    seed: u64,
) -> Result<(String, i64), GenerateError> {
    let mut rng = stream(
        seed,
        u64::from(order.customer),
        1_000 + u64::from(order.sequence),
    );
    let sim = customers.get(order.customer as usize);
    let basket_mean = sim.map_or(0.6, |c| c.basket_mean);
    let discount_propensity = sim.map_or(0.2, |c| c.discount_propensity);

    let extra = if basket_mean > 0.0 {
        param(Poisson::new(basket_mean))?.sample(&mut rng) as usize
    } else {
        0
    };
    let n_items = (1 + extra).min(8);
    let mut chosen: Vec<usize> = Vec::with_capacity(n_items + 2);
    for _ in 0..n_items {
        let product = catalog.popularity.sample(&mut rng);
        if !chosen.contains(&product) {
            chosen.push(product);
        }
    }
    // Planted complements ride along with their anchor.
    let anchors: Vec<usize> = chosen.clone();
    for product in anchors {
        let partner = catalog.products.get(product).and_then(|p| p.partner);
        if let Some(partner) = partner.filter(|p| !chosen.contains(p))
            && rng.random_bool(0.4)
        {
            chosen.push(partner);
        }
    }
    let discount_bps: i64 = if rng.random_bool(discount_propensity) {
        500 * rng.random_range(2..=4)
    } else {
        0
    };
    let order_id = ORDER_BASE + order_number;
    let mut out = String::with_capacity(300 + chosen.len() * 420);
    out.push_str("{\"id\":");
    gid(&mut out, "Order", order_id);
    let stamp = format_timestamp(order.time);
    let cancelled = rng.random_bool(0.01);
    let _ = write!(
        out,
        ",\"createdAt\":\"{stamp}\",\"processedAt\":\"{stamp}\",\"cancelledAt\":{},\"test\":false,\"currencyCode\":\"USD\",\"customer\":",
        if cancelled {
            format!("\"{stamp}\"")
        } else {
            "null".to_string()
        }
    );
    if order.customer == u32::MAX {
        out.push_str("null");
    } else {
        out.push_str("{\"id\":");
        gid(
            &mut out,
            "Customer",
            CUSTOMER_BASE + u64::from(order.customer),
        );
        out.push('}');
    }
    out.push_str("}\n");
    let mut value = 0i64;
    for product_index in &chosen {
        let Some(product) = catalog.products.get(*product_index) else {
            continue;
        };
        let pick = rng.random_range(0..product.variants.len().max(1));
        let Some(variant) = product.variants.get(pick) else {
            continue;
        };
        let quantity: i64 = match rng.random_range(0..100) {
            0..=84 => 1,
            85..=96 => 2,
            _ => 3,
        };
        let line_total = variant.price_minor * quantity;
        let discount = line_total * discount_bps / 10_000;
        value += line_total - discount;
        out.push_str("{\"id\":\"gid:\\/\\/shopify\\/LineItem\\/#LI#\",\"quantity\":");
        let _ = write!(out, "{quantity},\"variant\":{{\"id\":");
        gid(&mut out, "ProductVariant", variant.id);
        out.push_str("},\"product\":{\"id\":");
        gid(&mut out, "Product", product.id);
        out.push_str("},\"originalUnitPriceSet\":{\"shopMoney\":");
        money(&mut out, variant.price_minor);
        out.push_str("},\"discountAllocations\":[");
        if discount > 0 {
            out.push_str("{\"allocatedAmountSet\":{\"shopMoney\":");
            money(&mut out, discount);
            out.push_str("}}");
        }
        out.push_str("],\"__parentId\":");
        gid(&mut out, "Order", order_id);
        out.push_str("}\n");
    }
    let value = if cancelled { 0 } else { value };
    Ok((out, value))
}

fn write_customers(
    customers: &[CustomerSim],
    spent: &[i64],
    path: &Path,
    store: &mut GeneratedStore,
) -> Result<(), GenerateError> {
    let file = File::create(path).map_err(io_error(path))?;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    let mut line = String::with_capacity(300);
    for (index, sim) in customers.iter().enumerate() {
        line.clear();
        line.push_str("{\"id\":");
        gid(&mut line, "Customer", CUSTOMER_BASE + index as u64);
        let _ = write!(
            line,
            ",\"createdAt\":\"{}\",\"numberOfOrders\":\"{}\",\"amountSpent\":",
            format_timestamp(sim.created_at),
            sim.order_times.len()
        );
        money(&mut line, spent.get(index).copied().unwrap_or(0));
        line.push_str(",\"tags\":[");
        for (i, tag) in sim.tags.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            let _ = write!(line, "\"{tag}\"");
        }
        let _ = writeln!(line, "],\"dataSaleOptOut\":{}}}", sim.data_sale_opt_out);
        writer.write_all(line.as_bytes()).map_err(io_error(path))?;
        store.bytes += line.len() as u64;
    }
    writer.flush().map_err(io_error(path))
}
