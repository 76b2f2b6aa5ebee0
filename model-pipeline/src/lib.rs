//! model-pipeline: turns a store's history into the scores the checkout Functions read.
//!
//! It reads the Admin API's bulk-operation JSONL exports (customers, products with unit costs,
//! orders with line items and discount allocations) in one streaming pass, fits BG/NBD and
//! Gamma-Gamma, derives segments, discount affinity, complementary products and per-variant cost
//! data, and writes a metafield plan (JSONL of `MetafieldsSetInput`) plus an HTML report. The
//! `marginwise` binary adds a deterministic sample-store generator, the README's demo (checkout
//! scenarios evaluated by the engine on the plan's values) and a benchmark.
//!
//! What it deliberately does not do: it does not talk to Shopify (running the bulk queries and
//! applying the plan is a separate step, so scoring can be tested and benchmarked offline), it
//! holds no order in memory once folded into per-customer accumulators (memory grows with
//! customers and products), and it writes metafield values only through the engine's encoders,
//! so the writer and the Functions' reader cannot drift apart.

pub mod complements;
pub mod demo;
pub mod generate;
pub mod ingest;
pub mod models;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod report;
pub mod score;
pub mod segments;

/// Peak resident memory of this process in bytes (`VmHWM` in /proc/self/status), if known.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
