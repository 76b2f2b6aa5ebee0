//! model-pipeline: turns a store's history into the scores the checkout Functions read.
//!
//! It reads the Admin API's bulk-operation JSONL exports (customers, products with unit costs,
//! orders with line items and discount allocations) in one streaming pass, fits BG/NBD and
//! Gamma-Gamma, derives segments, discount affinity, complementary products and per-variant cost
//! data, and writes a metafield plan (JSONL of `MetafieldsSetInput`) plus an HTML report. The
//! `marginwise` binary adds a deterministic sample-store generator, the README's demo (checkout
//! scenarios evaluated by the engine on the plan's values) and a benchmark.
//!
//! The Shopify side lives in its own modules (`admin`, `sync`, `privacy`): the bulk export, the
//! write-back of the plan, installing the discount and the cart transform, the privacy webhooks.
//!
//! What scoring deliberately does not do: it does not talk to Shopify (exporting and applying
//! are separate steps, so scoring can be tested and benchmarked offline), it
//! holds no order's line items in memory once the order is folded into per-customer accumulators
//! (per order it keeps only its id, and its customer and day, so that duplicates are refused and
//! the file's order changes nothing), and it writes metafield values only through the engine's
//! encoders, so the writer and the Functions' reader cannot drift apart.

pub mod admin;
pub mod authorize;
pub mod cart_transform;
pub mod complements;
pub mod currency;
pub mod demo;
pub mod explain;
pub mod folder_lock;
pub mod generate;
pub mod ingest;
pub mod measure;
pub mod models;
pub mod pipeline;
pub mod plan;
pub mod policy;
pub mod privacy;
pub mod progress;
pub mod refresh;
pub mod report;
pub mod score;
pub mod segments;
pub mod stdout;
pub mod sync;

/// Peak resident memory of this process in bytes (`VmHWM` in /proc/self/status), if known.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU time (user + system, all threads) this process has used, in seconds, from
/// /proc/self/stat (clock ticks of 1/100 s, the Linux default).
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) start at the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

/// Wall-clock and CPU seconds of one pipeline stage.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Timing {
    pub stage: &'static str,
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
}

/// Measures a stage: `let t = Stopwatch::start(); ...; timings.push(t.stop("name"));`.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch {
    wall: std::time::Instant,
    cpu: f64,
}

impl Stopwatch {
    pub fn start() -> Stopwatch {
        Stopwatch {
            wall: std::time::Instant::now(),
            cpu: cpu_seconds(),
        }
    }

    pub fn stop(&self, stage: &'static str) -> Timing {
        Timing {
            stage,
            wall_seconds: self.wall.elapsed().as_secs_f64(),
            cpu_seconds: (cpu_seconds() - self.cpu).max(0.0),
        }
    }
}
