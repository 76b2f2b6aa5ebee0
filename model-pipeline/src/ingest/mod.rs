//! Streaming reader for the Admin API's bulk-operation JSONL exports.
//!
//! Three files in one folder, each the result of one `bulkOperationRunQuery`:
//!
//! `customers.jsonl`
//! ```graphql
//! { customers { edges { node {
//!     id createdAt numberOfOrders amountSpent { amount currencyCode } tags dataSaleOptOut
//! } } } }
//! ```
//! `products.jsonl` (variants arrive as child lines carrying `__parentId`, in any order)
//! ```graphql
//! { products { edges { node { id
//!     variants { edges { node { id price inventoryItem { unitCost { amount currencyCode } } } } }
//! } } } }
//! ```
//! `orders.jsonl`, run with `groupObjects: true` so every line item directly follows its order
//! ```graphql
//! { orders(sortKey: PROCESSED_AT, query: "status:any") { edges { node {
//!     id createdAt processedAt cancelledAt test currencyCode customer { id }
//!     lineItems { edges { node {
//!         id quantity variant { id } product { id }
//!         originalUnitPriceSet { shopMoney { amount currencyCode } }
//!         discountAllocations { allocatedAmountSet { shopMoney { amount currencyCode } } }
//!     } } }
//! } } } }
//! ```
//!
//! An order is folded into its customer's [`History`] and into the co-purchase counts as soon as
//! its last line item has been read, which is why the orders export must be grouped (a child line
//! that does not follow its order is reported, not buffered). Lines are decoded in parallel in
//! chunks of a few megabytes and folded in file order, so results do not depend on the number of
//! threads. Nor do they depend on the order of the orders: the query sorts by `processedAt`, but a
//! file that is not sorted (or that was concatenated) must not change a score, so which days are
//! transactions, and which fall in the fit-check holdout, is settled after the last order. That
//! costs memory per order, not only per customer: each order id with its line (to refuse a
//! duplicate, which would count the same purchase twice) and each counted order's customer and
//! day. Measured: 13 MB more peak memory for the 284,844 orders of the 100,000-customer benchmark
//! (76 -> 89 MB, `BENCHMARKS.md`).
//!
//! An order dated after this run's clock, or before [`EARLIEST_ORDER`], is refused: the latest
//! order is the models' "now" (the export records no time of its own), so one order dated in 2099
//! would age every customer by decades.
//!
//! A malformed line stops the run with `file:line: field `path`: why`; with `skip_bad` it is
//! skipped and counted instead (the first few are kept for the summary). A skipped duplicate
//! (customer, product, variant, order) leaves the first record as it was.

pub mod records;

use std::collections::hash_map::Entry;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use marginwise_engine::money::{Currency, parse_decimal_minor};
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::currency::shop_currency;
use crate::progress::Progress;
use records::{
    CustomerLine, FieldError, Gid, GidField, GidKind, MoneyV2, OrderFileLine, ProductFileLine,
    ShortText, decode_line, format_timestamp, parse_timestamp,
};

/// File names inside an input folder.
pub const CUSTOMERS_FILE: &str = "customers.jsonl";
pub const PRODUCTS_FILE: &str = "products.jsonl";
pub const ORDERS_FILE: &str = "orders.jsonl";

/// Lines are decoded in parallel in chunks of about this many bytes.
const CHUNK_BYTES: usize = 8 << 20;
/// How many skipped lines are quoted in the summary.
const BAD_LINE_EXAMPLES: usize = 10;
/// The fit-check plot compares predictions with the last 26 weeks of the history (see
/// [`StoreData::cutoff_day`]).
pub const HOLDOUT_DAYS: i32 = 26 * 7;
/// 1990-01-01T00:00:00Z: no order is older. Online stores start in the mid-1990s, and a history
/// imported from an older till still gives BG/NBD decades it cannot use; a date before this is a
/// placeholder (`0001-01-01`) or a wrong year.
pub const EARLIEST_ORDER: i64 = 631_152_000;
/// How far after this run's clock an order may be dated: a store's clock and ours may disagree by
/// a little, and a time zone written as UTC by mistake moves a date by at most 14 hours.
pub const CLOCK_TOLERANCE_SECONDS: i64 = 86_400;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{file}:{line}: field `{field}`: {message}")]
    Bad {
        file: String,
        line: u64,
        field: String,
        message: String,
    },
    #[error("cannot read {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Currency(String),
}

/// How to read the input.
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// Skip and count malformed lines instead of stopping at the first one.
    pub skip_bad: bool,
    /// A customer tag meaning "no personalization" (in addition to `dataSaleOptOut`).
    pub opt_out_tag: Option<String>,
    /// The shop currency; read from the data when absent.
    pub currency: Option<Currency>,
    /// This run's clock in seconds since the epoch (orders dated more than
    /// [`CLOCK_TOLERANCE_SECONDS`] after it are refused); the system clock when absent.
    pub now: Option<i64>,
}

/// What was read and what was left out, for the summary and the report.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct IngestStats {
    pub customer_lines: u64,
    pub product_lines: u64,
    pub order_lines: u64,
    pub orders: u64,
    pub line_items: u64,
    pub guest_orders: u64,
    pub orders_of_unknown_customers: u64,
    pub orders_of_opted_out_customers: u64,
    pub cancelled_or_test_orders: u64,
    pub line_items_of_unknown_products: u64,
    pub bad_lines: u64,
    pub bad_line_examples: Vec<String>,
}

/// A customer as the customers export describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRecord {
    pub id: u64,
    pub created_at: i64,
    pub number_of_orders: i64,
    /// `dataSaleOptOut` or the merchant's opt-out tag: no profile, ever.
    pub opted_out: bool,
}

/// One product variant with the figures the Functions need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantRecord {
    pub id: u64,
    /// Index into [`Catalog::products`].
    pub product: u32,
    pub price_minor: i64,
    pub unit_cost_minor: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Product ids (the number of the product GID), by product index.
    pub products: Vec<u64>,
    pub product_index: FxHashMap<u64, u32>,
    pub variants: Vec<VariantRecord>,
}

/// Per-customer accumulators: everything the models, segments and evaluation need, updated once
/// per order. A "transaction" is all of a customer's orders on one UTC calendar day (the CDNOW
/// convention the published model figures use). Every field is the same whatever order the file
/// lists the orders in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    pub n_orders: u32,
    pub n_discounted_orders: u32,
    pub n_transactions: u32,
    pub first_day: i32,
    pub last_day: i32,
    /// Sum of all order values, shop minor units (after discounts).
    pub total_value_minor: i64,
    /// Value of the first transaction, left out of the repeat-purchase mean.
    pub first_value_minor: i64,
    /// Transactions before [`StoreData::cutoff_day`] and on or after it (fit-check plot).
    pub calibration_transactions: u32,
    pub calibration_last_day: i32,
    pub holdout_transactions: u32,
    pub holdout_last_day: i32,
    /// The latest order (by time, then by id, so that ties do not depend on the file's order):
    /// its time, id and distinct products (product indices), kept for the leave-last-order-out
    /// evaluation of complementary products.
    pub last_order_time: i64,
    pub last_order_id: u64,
    pub last_order_products: Box<[u32]>,
}

impl History {
    /// Folds one order's value in. Sums, the first day's value and the latest day do not depend on
    /// the order orders come in; the transaction counts need every day at once and are made by
    /// [`count_transactions`] after the last order.
    fn add_order(&mut self, day: i32, value: i64, discounted: bool) {
        let first_order = self.n_orders == 0;
        self.n_orders = self.n_orders.saturating_add(1);
        self.n_discounted_orders = self
            .n_discounted_orders
            .saturating_add(u32::from(discounted));
        self.total_value_minor = self.total_value_minor.saturating_add(value);
        if first_order || day < self.first_day {
            self.first_day = day;
            self.first_value_minor = value;
        } else if day == self.first_day {
            self.first_value_minor = self.first_value_minor.saturating_add(value);
        }
        self.last_day = if first_order {
            day
        } else {
            self.last_day.max(day)
        };
    }
}

/// Counts each customer's transactions (distinct order days) in all, before `cutoff` and from it,
/// from the (customer index, day) of every counted order, in any order and with repeats.
fn count_transactions(histories: &mut [History], mut days: Vec<(u32, i32)>, cutoff: i32) {
    days.sort_unstable();
    days.dedup();
    for (customer, day) in days {
        let Some(history) = histories.get_mut(customer as usize) else {
            continue;
        };
        history.n_transactions = history.n_transactions.saturating_add(1);
        // Days arrive in increasing order per customer, so the latest is the last one seen.
        if day < cutoff {
            history.calibration_transactions = history.calibration_transactions.saturating_add(1);
            history.calibration_last_day = day;
        } else {
            history.holdout_transactions = history.holdout_transactions.saturating_add(1);
            history.holdout_last_day = day;
        }
    }
}

/// Co-purchase counts over orders: how many orders contain each product and each pair.
#[derive(Debug, Clone, Default)]
pub struct CoPurchase {
    pub n_orders: u64,
    pub product_orders: Vec<u32>,
    /// Key: `(smaller product index << 32) | larger product index`.
    pub pair_orders: FxHashMap<u64, u32>,
}

impl CoPurchase {
    pub fn pair_key(a: u32, b: u32) -> u64 {
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        (u64::from(lo) << 32) | u64::from(hi)
    }

    /// Adds (`sign` = 1) or removes (`sign` = -1) one order's distinct products.
    pub fn apply(&mut self, products: &[u32], sign: i8) {
        if products.is_empty() {
            return;
        }
        let step = |count: &mut u32| {
            *count = if sign > 0 {
                count.saturating_add(1)
            } else {
                count.saturating_sub(1)
            };
        };
        if sign > 0 {
            self.n_orders = self.n_orders.saturating_add(1);
        } else {
            self.n_orders = self.n_orders.saturating_sub(1);
        }
        for &p in products {
            if let Some(count) = self.product_orders.get_mut(p as usize) {
                step(count);
            }
        }
        for (i, &a) in products.iter().enumerate() {
            for &b in products.iter().skip(i + 1) {
                step(self.pair_orders.entry(Self::pair_key(a, b)).or_insert(0));
            }
        }
    }
}

/// Everything read from one store.
#[derive(Debug, Clone)]
pub struct StoreData {
    pub currency: Currency,
    pub customers: Vec<CustomerRecord>,
    pub customer_index: FxHashMap<u64, u32>,
    /// Parallel to `customers`.
    pub histories: Vec<History>,
    pub catalog: Catalog,
    pub co_purchase: CoPurchase,
    /// The latest order time seen (seconds since the epoch); the models' "now".
    pub last_order_time: i64,
    /// First day of the fit-check holdout: orders before it calibrate, orders on or after it are
    /// predicted. [`HOLDOUT_DAYS`] before the day after the latest order (`i32::MAX` without
    /// orders).
    pub cutoff_day: i32,
    pub stats: IngestStats,
}

/// Reads a store's export folder.
pub fn read_store(
    dir: &Path,
    options: &IngestOptions,
    progress: Progress,
) -> Result<StoreData, IngestError> {
    let mut stats = IngestStats::default();
    let mut currency = match options.currency {
        None => None,
        Some(given) => Some(ShopCurrency {
            currency: shop_currency(given.code_str())
                .map_err(|error| IngestError::Currency(format!("the shop currency {error}")))?,
            source: None,
        }),
    };
    let customers_path = dir.join(CUSTOMERS_FILE);
    let products_path = dir.join(PRODUCTS_FILE);
    let orders_path = dir.join(ORDERS_FILE);

    let (customers, customer_index) = read_customers(
        &customers_path,
        options,
        &mut currency,
        &mut stats,
        progress,
    )?;
    let shop = match currency {
        Some(shop) => shop,
        None => peek_order_currency(&orders_path)?,
    };
    let catalog = read_products(&products_path, options, shop, &mut stats, progress)?;
    let mut data = StoreData {
        currency: shop.currency,
        histories: vec![History::default(); customers.len()],
        customers,
        customer_index,
        co_purchase: CoPurchase {
            product_orders: vec![0; catalog.products.len()],
            ..CoPurchase::default()
        },
        catalog,
        last_order_time: i64::MIN,
        cutoff_day: i32::MAX,
        stats,
    };
    read_orders(&orders_path, options, shop, &mut data, progress)?;
    Ok(data)
}

/// The shop currency, and the line it was read from (`None`: given by the caller), which a
/// line in another currency is compared with.
#[derive(Debug, Clone, Copy)]
struct ShopCurrency {
    currency: Currency,
    source: Option<(&'static str, u64)>,
}

impl ShopCurrency {
    /// ` (from customers.jsonl line 1)`: where the currency a line disagrees with came from, so
    /// that a wrong first line is named too.
    fn source(&self) -> String {
        match self.source {
            None => String::new(),
            Some((file, line)) => format!(" (from {file} line {line})"),
        }
    }
}

/// The day (since the epoch) of `time`, for a time within the accepted order dates.
fn day_of(time: i64) -> i32 {
    i32::try_from(time.div_euclid(86_400)).unwrap_or(i32::MAX)
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn open(path: &Path) -> Result<(File, u64), IngestError> {
    let io = |source| IngestError::Io {
        file: display(path),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    Ok((file, len))
}

/// Reads a JSONL file in chunks, decodes the lines of a chunk in parallel with `parse`, then
/// hands them to `consume` in file order with their 1-based line numbers. Blank lines are
/// ignored. Bad lines (from `parse` or `consume`) stop the run or are counted (`skip_bad`).
///
/// The fold of one chunk (sequential: it updates the accumulators in file order) runs at the
/// same time as the decoding of the next one, so neither core waits for the other.
fn read_jsonl<T, P, C>(
    path: &Path,
    label: &str,
    skip_bad: bool,
    stats: &mut IngestStats,
    progress: Progress,
    parse: P,
    mut consume: C,
) -> Result<u64, IngestError>
where
    T: Send,
    P: Fn(&[u8]) -> Result<T, FieldError> + Sync,
    C: FnMut(u64, T, &mut IngestStats) -> Result<(), FieldError> + Send,
{
    let (file, len) = open(path)?;
    let bar = progress.bytes(label, len);
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buffer: Vec<u8> = Vec::with_capacity(CHUNK_BYTES + (1 << 16));
    let mut line_number: u64 = 0;
    // Buffers reused from chunk to chunk: fresh multi-megabyte allocations would cost a page
    // fault per page every time.
    let mut offsets: Vec<(u64, usize, usize)> = Vec::new();
    let mut pending: Vec<(u64, Result<T, FieldError>)> = Vec::new();
    let mut decoded: Vec<(u64, Result<T, FieldError>)> = Vec::new();
    let io = |source| IngestError::Io {
        file: display(path),
        source,
    };
    loop {
        buffer.clear();
        while buffer.len() < CHUNK_BYTES {
            if reader.read_until(b'\n', &mut buffer).map_err(io)? == 0 {
                break;
            }
        }
        let done = buffer.is_empty();
        bar.inc(buffer.len() as u64);
        offsets.clear();
        let base = buffer.as_ptr() as usize;
        for (i, line) in buffer.split(|b| *b == b'\n').enumerate() {
            if !line.iter().all(u8::is_ascii_whitespace) {
                let start = line.as_ptr() as usize - base;
                offsets.push((line_number + i as u64 + 1, start, start + line.len()));
            }
        }
        // A chunk always ends at a newline (or the end of the file), so the last split piece is
        // empty or the final unterminated line.
        line_number += buffer.iter().filter(|b| **b == b'\n').count() as u64;
        if !done && buffer.last() != Some(&b'\n') {
            line_number += 1;
        }
        let chunk: &[u8] = &buffer;
        let (_, folded) = rayon::join(
            || {
                offsets
                    .par_iter()
                    .map(|(number, start, end)| {
                        (*number, parse(chunk.get(*start..*end).unwrap_or_default()))
                    })
                    .collect_into_vec(&mut decoded)
            },
            || fold(&mut pending, &mut consume, stats, skip_bad, path),
        );
        if let Err(error) = folded {
            bar.abandon();
            return Err(error);
        }
        std::mem::swap(&mut pending, &mut decoded);
        if done {
            break;
        }
    }
    bar.finish_and_clear();
    Ok(line_number)
}

/// Hands decoded lines to `consume` in order, stopping at or counting the bad ones.
fn fold<T, C>(
    decoded: &mut Vec<(u64, Result<T, FieldError>)>,
    consume: &mut C,
    stats: &mut IngestStats,
    skip_bad: bool,
    path: &Path,
) -> Result<(), IngestError>
where
    C: FnMut(u64, T, &mut IngestStats) -> Result<(), FieldError>,
{
    for (number, result) in decoded.drain(..) {
        let outcome = result.and_then(|value| consume(number, value, stats));
        if let Err(error) = outcome {
            let bad = IngestError::Bad {
                file: display(path),
                line: number,
                field: error.field,
                message: error.message,
            };
            if !skip_bad {
                return Err(bad);
            }
            stats.bad_lines += 1;
            if stats.bad_line_examples.len() < BAD_LINE_EXAMPLES {
                stats.bad_line_examples.push(bad.to_string());
            }
        }
    }
    Ok(())
}

fn gid_of(field: Option<GidField>, name: &str, kind: GidKind) -> Result<u64, FieldError> {
    match field {
        None => Err(FieldError::new(name, "missing")),
        Some(GidField::Invalid) => Err(FieldError::new(name, "not a Shopify GID")),
        Some(GidField::Valid(Gid {
            kind: found,
            number,
        })) if found == kind => Ok(number),
        Some(GidField::Valid(gid)) => Err(FieldError::new(
            name,
            format!(
                "expected a {} GID, found a {} GID",
                kind.name(),
                gid.kind.name()
            ),
        )),
    }
}

fn timestamp(text: Option<ShortText>, name: &str) -> Result<i64, FieldError> {
    let text = text.ok_or_else(|| FieldError::new(name, "missing"))?;
    if !text.is_valid() {
        return Err(FieldError::new(
            name,
            "not an ISO 8601 timestamp: longer than any timestamp",
        ));
    }
    parse_timestamp(text.as_str()).map_err(|why| {
        FieldError::new(name, format!("not an ISO 8601 timestamp: {text:?} ({why})"))
    })
}

fn amount(text: Option<ShortText>, name: &str, currency: Currency) -> Result<i64, FieldError> {
    let text = text.ok_or_else(|| FieldError::new(name, "missing"))?;
    parse_decimal_minor(text.as_str(), currency.exponent)
        .filter(|_| text.is_valid())
        .ok_or_else(|| {
            FieldError::new(
                name,
                format!(
                    "not a decimal amount with at most {} decimals: {:?}",
                    currency.exponent, text
                ),
            )
        })
}

fn check_currency(
    code: Option<ShortText>,
    name: &str,
    shop: ShopCurrency,
) -> Result<(), FieldError> {
    match code {
        Some(code) if code.as_str() != shop.currency.code_str() => Err(FieldError::new(
            name,
            format!(
                "expected the shop currency {}{}, found {:?}",
                shop.currency.code_str(),
                shop.source(),
                code
            ),
        )),
        _ => Ok(()),
    }
}

/// A money field in the shop currency (`MoneyV2` or a `MoneyBag`'s `shopMoney`).
fn money(value: Option<MoneyV2>, name: &str, shop: ShopCurrency) -> Result<i64, FieldError> {
    let value = value.ok_or_else(|| FieldError::new(name, "missing"))?;
    check_currency(value.currency_code, &format!("{name}.currencyCode"), shop)?;
    amount(value.amount, &format!("{name}.amount"), shop.currency)
}

fn read_customers(
    path: &Path,
    options: &IngestOptions,
    currency: &mut Option<ShopCurrency>,
    stats: &mut IngestStats,
    progress: Progress,
) -> Result<(Vec<CustomerRecord>, FxHashMap<u64, u32>), IngestError> {
    struct Parsed {
        record: CustomerRecord,
        currency_code: Option<ShortText>,
    }
    let opt_out_tag = options.opt_out_tag.clone();
    let mut customers = Vec::new();
    let mut index: FxHashMap<u64, u32> = FxHashMap::default();
    // The line of each customer, by position, to name both lines of a duplicate; dropped once
    // the file is read.
    let mut lines_read: Vec<u64> = Vec::new();
    let mut currency_local = *currency;
    let lines = read_jsonl(
        path,
        "customers",
        options.skip_bad,
        stats,
        progress,
        |line| {
            let raw: CustomerLine = decode_line(line)?;
            let id = gid_of(raw.id, "id", GidKind::Customer)?;
            let created_at = timestamp(raw.created_at, "createdAt")?;
            let orders = raw
                .number_of_orders
                .ok_or_else(|| FieldError::new("numberOfOrders", "missing"))?;
            let number_of_orders = orders
                .as_str()
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    FieldError::new("numberOfOrders", format!("not a count: {orders:?}"))
                })?;
            let tagged = opt_out_tag
                .as_deref()
                .is_some_and(|tag| raw.tags.iter().any(|t| t.eq_ignore_ascii_case(tag)));
            Ok(Parsed {
                record: CustomerRecord {
                    id,
                    created_at,
                    number_of_orders,
                    opted_out: raw.data_sale_opt_out.unwrap_or(false) || tagged,
                },
                currency_code: raw.amount_spent.and_then(|m| m.currency_code),
            })
        },
        |number, parsed, _| {
            // The duplicate check comes first: a refused line must change nothing (with
            // `skip_bad`, the first record is kept as it was).
            let position = u32::try_from(customers.len())
                .map_err(|_| FieldError::new("id", "more than 4 billion customers"))?;
            let id = parsed.record.id;
            let slot = match index.entry(id) {
                Entry::Occupied(first) => {
                    let first_line = lines_read.get(*first.get() as usize).copied().unwrap_or(0);
                    return Err(FieldError::new(
                        "id",
                        format!("duplicate customer {id}: already on line {first_line}"),
                    ));
                }
                Entry::Vacant(slot) => slot,
            };
            // The first customer's currency is the shop's: a code that is no shop currency is
            // refused on its own line, and a later line that disagrees names this one.
            if let Some(code) = parsed.currency_code {
                match currency_local {
                    None => {
                        let currency = shop_currency(code.as_str()).map_err(|error| {
                            FieldError::new("amountSpent.currencyCode", error.to_string())
                        })?;
                        currency_local = Some(ShopCurrency {
                            currency,
                            source: Some((CUSTOMERS_FILE, number)),
                        });
                    }
                    Some(shop) => check_currency(Some(code), "amountSpent.currencyCode", shop)?,
                }
            }
            slot.insert(position);
            lines_read.push(number);
            customers.push(parsed.record);
            Ok(())
        },
    )?;
    stats.customer_lines = lines;
    *currency = currency_local;
    Ok((customers, index))
}

fn read_products(
    path: &Path,
    options: &IngestOptions,
    shop: ShopCurrency,
    stats: &mut IngestStats,
    progress: Progress,
) -> Result<Catalog, IngestError> {
    enum Row {
        Product(u64),
        Variant {
            id: u64,
            product: u64,
            price_minor: i64,
            unit_cost_minor: Option<i64>,
        },
    }
    let mut catalog = Catalog::default();
    // The line of each product, by position, to name both lines of a duplicate.
    let mut product_lines: Vec<u64> = Vec::new();
    // Variants may arrive before their product when the export is not grouped; they are joined
    // once the file has been read (the catalog is small next to the orders).
    let mut pending: Vec<(u64, u64, u64, i64, Option<i64>)> = Vec::new();
    let lines = read_jsonl(
        path,
        "products",
        options.skip_bad,
        stats,
        progress,
        |line| {
            let raw: ProductFileLine = decode_line(line)?;
            if raw.parent_id.is_none() {
                return Ok(Row::Product(gid_of(raw.id, "id", GidKind::Product)?));
            }
            let product = gid_of(raw.parent_id, "__parentId", GidKind::Product)?;
            let id = gid_of(raw.id, "id", GidKind::ProductVariant)?;
            let price_minor = amount(raw.price, "price", shop.currency)?;
            let unit_cost_minor = match raw.inventory_item.and_then(|i| i.unit_cost) {
                None => None,
                Some(cost) => {
                    let minor = money(Some(cost), "inventoryItem.unitCost", shop)?;
                    if minor < 0 {
                        return Err(FieldError::new(
                            "inventoryItem.unitCost.amount",
                            "negative unit cost",
                        ));
                    }
                    Some(minor)
                }
            };
            Ok(Row::Variant {
                id,
                product,
                price_minor,
                unit_cost_minor,
            })
        },
        |number, row, _| {
            match row {
                Row::Product(id) => {
                    let position = u32::try_from(catalog.products.len())
                        .map_err(|_| FieldError::new("id", "too many products"))?;
                    // Checked before anything is changed: a skipped duplicate leaves the first
                    // product, and the variants that name it, as they were.
                    match catalog.product_index.entry(id) {
                        Entry::Occupied(first) => {
                            let first_line = product_lines
                                .get(*first.get() as usize)
                                .copied()
                                .unwrap_or(0);
                            return Err(FieldError::new(
                                "id",
                                format!("duplicate product {id}: already on line {first_line}"),
                            ));
                        }
                        Entry::Vacant(slot) => {
                            slot.insert(position);
                        }
                    }
                    product_lines.push(number);
                    catalog.products.push(id);
                }
                Row::Variant {
                    id,
                    product,
                    price_minor,
                    unit_cost_minor,
                } => pending.push((number, id, product, price_minor, unit_cost_minor)),
            }
            Ok(())
        },
    )?;
    stats.product_lines = lines;
    // Each variant's line and product, to refuse a second variant of the same id: the plan would
    // hold two different values for one metafield, and whichever was written last would win.
    let mut variant_lines: FxHashMap<u64, (u64, u64)> = FxHashMap::default();
    for (line, id, product, price_minor, unit_cost_minor) in pending {
        let (field, message) = match (catalog.product_index.get(&product), variant_lines.entry(id))
        {
            (None, _) => (
                "__parentId",
                format!("variant {id} names product {product}, which is not in the file"),
            ),
            (Some(_), Entry::Occupied(first)) => {
                let (first_line, first_product) = *first.get();
                (
                    "id",
                    format!(
                        "duplicate variant {id}: already on line {first_line} (product \
                         {first_product}), here under product {product}; the plan can hold one \
                         value per variant"
                    ),
                )
            }
            (Some(&index), Entry::Vacant(slot)) => {
                slot.insert((line, product));
                catalog.variants.push(VariantRecord {
                    id,
                    product: index,
                    price_minor,
                    unit_cost_minor,
                });
                continue;
            }
        };
        let error = IngestError::Bad {
            file: display(path),
            line,
            field: field.into(),
            message,
        };
        if !options.skip_bad {
            return Err(error);
        }
        stats.bad_lines += 1;
        if stats.bad_line_examples.len() < BAD_LINE_EXAMPLES {
            stats.bad_line_examples.push(error.to_string());
        }
    }
    Ok(catalog)
}

/// The currency of the first order, for stores whose customer export carries none.
fn peek_order_currency(path: &Path) -> Result<ShopCurrency, IngestError> {
    let (file, _) = open(path)?;
    let mut first = String::new();
    BufReader::new(file)
        .read_line(&mut first)
        .map_err(|source| IngestError::Io {
            file: display(path),
            source,
        })?;
    let code = serde_json::from_str::<OrderFileLine>(&first)
        .ok()
        .and_then(|line| line.currency_code)
        .ok_or_else(|| {
            IngestError::Currency(format!(
                "the shop currency is not in {} nor on the first line of {}: pass --currency",
                CUSTOMERS_FILE,
                display(path)
            ))
        })?;
    let currency = shop_currency(code.as_str()).map_err(|error| IngestError::Bad {
        file: display(path),
        line: 1,
        field: "currencyCode".into(),
        message: error.to_string(),
    })?;
    Ok(ShopCurrency {
        currency,
        source: Some((ORDERS_FILE, 1)),
    })
}

/// One decoded line of the orders file.
enum OrderRow {
    Order {
        id: u64,
        customer: Option<u64>,
        time: i64,
        /// The field `time` came from (`processedAt`, else `createdAt`).
        time_field: &'static str,
        excluded: bool,
    },
    Item {
        parent: u64,
        product: Option<u64>,
        value_minor: i64,
        discounted: bool,
    },
}

/// The order being assembled from its line items.
struct OpenOrder {
    id: u64,
    customer: Option<u64>,
    time: i64,
    excluded: bool,
    value_minor: i64,
    discounted: bool,
    products: Vec<u32>,
}

/// One line of the orders file, decoded with the checks `score` applies, for readers that need
/// the line items themselves (`marginwise measure`) rather than the per-customer histories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderLine {
    Order {
        id: u64,
        customer: Option<u64>,
        /// `processedAt`, else `createdAt`, in seconds since the epoch.
        time: i64,
        /// Cancelled or a test order.
        excluded: bool,
    },
    Item {
        order: u64,
        product: Option<u64>,
        variant: Option<u64>,
        quantity: i64,
        /// Original unit price times quantity, shop minor units.
        gross_minor: i64,
        /// Sum of the line's discount allocations (negative ones count as 0), shop minor units.
        discount_minor: i64,
    },
}

fn parse_order_line(line: &[u8], shop: ShopCurrency) -> Result<OrderRow, FieldError> {
    Ok(match parse_order_detail(line, shop)? {
        (
            OrderLine::Order {
                id,
                customer,
                time,
                excluded,
            },
            time_field,
        ) => OrderRow::Order {
            id,
            customer,
            time,
            time_field,
            excluded,
        },
        (
            OrderLine::Item {
                order,
                product,
                gross_minor,
                discount_minor,
                ..
            },
            _,
        ) => OrderRow::Item {
            parent: order,
            product,
            value_minor: gross_minor.saturating_sub(discount_minor).max(0),
            discounted: discount_minor > 0,
        },
    })
}

/// Decodes one line of the orders file, with the field an order's time came from.
fn parse_order_detail(
    line: &[u8],
    shop: ShopCurrency,
) -> Result<(OrderLine, &'static str), FieldError> {
    let raw: OrderFileLine = decode_line(line)?;
    if raw.parent_id.is_none() {
        let id = gid_of(raw.id, "id", GidKind::Order)?;
        let (time, time_field) = match raw.processed_at {
            Some(_) => (timestamp(raw.processed_at, "processedAt")?, "processedAt"),
            None => (timestamp(raw.created_at, "createdAt")?, "createdAt"),
        };
        check_currency(raw.currency_code, "currencyCode", shop)?;
        let customer = match raw.customer {
            None => None,
            Some(reference) => Some(gid_of(reference.id, "customer.id", GidKind::Customer)?),
        };
        return Ok((
            OrderLine::Order {
                id,
                customer,
                time,
                excluded: raw.cancelled_at.is_some() || raw.test == Some(true),
            },
            time_field,
        ));
    }
    let parent = gid_of(raw.parent_id, "__parentId", GidKind::Order)?;
    let quantity = raw
        .quantity
        .ok_or_else(|| FieldError::new("quantity", "missing"))?;
    if quantity < 0 {
        return Err(FieldError::new("quantity", format!("negative: {quantity}")));
    }
    let unit_price = money(
        raw.original_unit_price_set.and_then(|bag| bag.shop_money),
        "originalUnitPriceSet.shopMoney",
        shop,
    )?;
    let mut discount: i64 = 0;
    for (i, allocation) in raw
        .discount_allocations
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let name = format!("discountAllocations[{i}].allocatedAmountSet.shopMoney");
        let minor = money(
            allocation
                .allocated_amount_set
                .and_then(|bag| bag.shop_money),
            &name,
            shop,
        )?;
        discount = discount.saturating_add(minor.max(0));
    }
    let product = match raw.product {
        None => None,
        Some(reference) => Some(gid_of(reference.id, "product.id", GidKind::Product)?),
    };
    // `score` never read the variant, so an unreadable one does not refuse the line: it is a
    // line of unknown cost for `measure`.
    let variant = raw
        .variant
        .and_then(|reference| gid_of(reference.id, "variant.id", GidKind::ProductVariant).ok());
    let gross = unit_price
        .checked_mul(quantity)
        .ok_or_else(|| FieldError::new("quantity", "line total overflows"))?;
    Ok((
        OrderLine::Item {
            order: parent,
            product,
            variant,
            quantity,
            gross_minor: gross,
            discount_minor: discount,
        },
        "",
    ))
}

/// Reads the orders file of a store [`read_store`] has already read (so its lines are known to be
/// good, grouped and unique), handing each decoded line to `consume` in file order. The shop
/// currency is `currency` (the one `read_store` settled on).
pub fn read_order_lines<C>(
    dir: &Path,
    currency: Currency,
    progress: Progress,
    mut consume: C,
) -> Result<u64, IngestError>
where
    C: FnMut(OrderLine) -> Result<(), FieldError> + Send,
{
    let shop = ShopCurrency {
        currency,
        source: None,
    };
    let mut stats = IngestStats::default();
    read_jsonl(
        &dir.join(ORDERS_FILE),
        "orders",
        false,
        &mut stats,
        progress,
        |line| parse_order_detail(line, shop).map(|(row, _)| row),
        |_, row, _| consume(row),
    )
}

fn read_orders(
    path: &Path,
    options: &IngestOptions,
    shop: ShopCurrency,
    data: &mut StoreData,
    progress: Progress,
) -> Result<(), IngestError> {
    let dates = OrderDates::new(options.now);
    let mut stats = std::mem::take(&mut data.stats);
    let mut open_order: Option<OpenOrder> = None;
    // The order whose line was refused (a duplicate, a date out of range): its line items go
    // with it instead of each being reported as an orphan.
    let mut refused_order: Option<u64> = None;
    // The line of every order id read, to refuse a second order of the same id.
    let mut order_lines: FxHashMap<u64, u64> = FxHashMap::default();
    // (customer index, day) of every order folded into a history: the transactions.
    let mut days: Vec<(u32, i32)> = Vec::new();
    let lines = read_jsonl(
        path,
        "orders",
        options.skip_bad,
        &mut stats,
        progress,
        |line| parse_order_line(line, shop),
        |number, row, stats| match row {
            OrderRow::Order {
                id,
                customer,
                time,
                time_field,
                excluded,
            } => {
                if let Some(done) = open_order.take() {
                    finish_order(done, data, stats, &mut days);
                }
                refused_order = None;
                let checked = match order_lines.entry(id) {
                    Entry::Occupied(first) => Err(FieldError::new(
                        "id",
                        format!(
                            "duplicate order {id}: already on line {} (a second copy would count \
                             the purchase twice)",
                            first.get()
                        ),
                    )),
                    Entry::Vacant(slot) => {
                        slot.insert(number);
                        dates.check(time, time_field)
                    }
                };
                if let Err(error) = checked {
                    refused_order = Some(id);
                    return Err(error);
                }
                open_order = Some(OpenOrder {
                    id,
                    customer,
                    time,
                    excluded,
                    value_minor: 0,
                    discounted: false,
                    products: Vec::new(),
                });
                Ok(())
            }
            OrderRow::Item {
                parent,
                product,
                value_minor,
                discounted,
            } => {
                if refused_order == Some(parent) {
                    return Ok(());
                }
                let order = open_order.as_mut().filter(|o| o.id == parent).ok_or_else(|| {
                    FieldError::new(
                        "__parentId",
                        format!(
                            "line item of order {parent} does not follow its order (export orders \
                             with groupObjects: true, or its order line was skipped)"
                        ),
                    )
                })?;
                stats.line_items += 1;
                order.value_minor = order.value_minor.saturating_add(value_minor);
                order.discounted |= discounted;
                match product.and_then(|id| data.catalog.product_index.get(&id)) {
                    Some(&index) => order.products.push(index),
                    None => stats.line_items_of_unknown_products += 1,
                }
                Ok(())
            }
        },
    )?;
    if let Some(done) = open_order.take() {
        finish_order(done, data, &mut stats, &mut days);
    }
    drop(order_lines);
    data.cutoff_day = if data.last_order_time == i64::MIN {
        i32::MAX
    } else {
        day_of(data.last_order_time)
            .saturating_sub(HOLDOUT_DAYS)
            .saturating_add(1)
    };
    count_transactions(&mut data.histories, days, data.cutoff_day);
    stats.order_lines = lines;
    data.stats = stats;
    Ok(())
}

/// The dates an order may have: from [`EARLIEST_ORDER`] to this run's clock (with
/// [`CLOCK_TOLERANCE_SECONDS`]).
struct OrderDates {
    now: i64,
}

impl OrderDates {
    fn new(now: Option<i64>) -> OrderDates {
        let now = now.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .and_then(|d| i64::try_from(d.as_secs()).ok())
                // A clock before 1970 is broken: check no upper bound rather than refuse all.
                .unwrap_or(i64::MAX)
        });
        OrderDates { now }
    }

    fn check(&self, time: i64, field: &str) -> Result<(), FieldError> {
        if time > self.now.saturating_add(CLOCK_TOLERANCE_SECONDS) {
            return Err(FieldError::new(
                field,
                format!(
                    "{} is later than this run's clock ({}): the latest order is the models' \
                     \"now\" (the export has no time of its own), so one order dated in the \
                     future would age every customer to that date",
                    format_timestamp(time),
                    format_timestamp(self.now)
                ),
            ));
        }
        if time < EARLIEST_ORDER {
            return Err(FieldError::new(
                field,
                format!(
                    "{} is before {}, older than any online store's history (a placeholder \
                     date or a wrong year): a customer's first order starts their clock, so it \
                     would make them decades old",
                    format_timestamp(time),
                    format_timestamp(EARLIEST_ORDER)
                ),
            ));
        }
        Ok(())
    }
}

/// Folds a complete order into its customer's history and the co-purchase counts, and notes its
/// customer and day in `days`.
fn finish_order(
    mut order: OpenOrder,
    data: &mut StoreData,
    stats: &mut IngestStats,
    days: &mut Vec<(u32, i32)>,
) {
    stats.orders += 1;
    if order.excluded {
        stats.cancelled_or_test_orders += 1;
        return;
    }
    data.last_order_time = data.last_order_time.max(order.time);
    order.products.sort_unstable();
    order.products.dedup();
    let customer = match order.customer {
        None => {
            stats.guest_orders += 1;
            None
        }
        Some(id) => match data.customer_index.get(&id) {
            None => {
                stats.orders_of_unknown_customers += 1;
                None
            }
            Some(&index) => Some(index),
        },
    };
    if let Some(index) = customer {
        // Opted-out customers' orders are left out of everything, aggregate statistics included:
        // they asked not to be used for personalization.
        if data
            .customers
            .get(index as usize)
            .is_some_and(|c| c.opted_out)
        {
            stats.orders_of_opted_out_customers += 1;
            return;
        }
        if let Some(history) = data.histories.get_mut(index as usize) {
            let day = day_of(order.time);
            history.add_order(day, order.value_minor, order.discounted);
            days.push((index, day));
            data.co_purchase.apply(&order.products, 1);
            if history.n_orders == 1
                || (order.time, order.id) > (history.last_order_time, history.last_order_id)
            {
                history.last_order_time = order.time;
                history.last_order_id = order.id;
                history.last_order_products = order.products.into_boxed_slice();
            }
            return;
        }
    }
    data.co_purchase.apply(&order.products, 1);
}
