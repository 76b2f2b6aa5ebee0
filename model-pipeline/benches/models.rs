//! Model benchmark: our BG/NBD and Gamma-Gamma against the Python package lifetimes 0.11.3, side
//! by side in one run on the same synthetic data.
//!
//! Run: `cargo bench -p model-pipeline --bench models` (optionally `-- 100000` to pick sizes).
//! It installs lifetimes through `model-pipeline/bench/setup.sh` (a venv under the target dir),
//! draws 100,000 and 1,000,000 customers from a BG/NBD + Gamma-Gamma process with a fixed seed,
//! writes them to CSV, times lifetimes on that CSV (`bench/lifetimes_bench.py`) and then our models
//! on the same rows, and prints a markdown table. Reading the CSV is timed on neither side. Times
//! are medians over the repeats; both sides use every core of the machine they can (lifetimes
//! through numpy, ours through rayon).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use model_pipeline::models::{BgNbd, CustomerSummary, GammaGamma};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Beta, Distribution, Exp, Gamma};
use rayon::prelude::*;

const SEED: u64 = 20_240_611;
const REPEATS: usize = 3;
/// Horizon of the conditional expectation, in weeks.
const HORIZON: f64 = 52.0;
/// The CDNOW estimates, so the synthetic store looks like a real one; money in cents.
const TRUE_BGNBD: BgNbd = BgNbd {
    r: 0.243,
    alpha: 4.414,
    a: 0.793,
    b: 2.426,
};
const TRUE_GG: GammaGamma = GammaGamma {
    p: 6.25,
    q: 3.74,
    gamma: 1544.0,
};

/// Draws customers acquired uniformly over a year and observed until the end of the second year.
/// Purchases on the same day are one transaction, as in the real pipeline; times are whole days
/// expressed in weeks.
fn synthetic(n: usize, seed: u64) -> Vec<CustomerSummary> {
    let mut rng = StdRng::seed_from_u64(seed);
    let rate = Gamma::new(TRUE_BGNBD.r, 1.0 / TRUE_BGNBD.alpha).unwrap();
    let dropout = Beta::new(TRUE_BGNBD.a, TRUE_BGNBD.b).unwrap();
    let spend_rate = Gamma::new(TRUE_GG.q, 1.0 / TRUE_GG.gamma).unwrap();
    (0..n)
        .map(|_| {
            let age_days = rand::Rng::random_range(&mut rng, 7..=728_u32);
            let age = f64::from(age_days) / 7.0;
            let lambda = rate.sample(&mut rng);
            let p = dropout.sample(&mut rng);
            let nu = spend_rate.sample(&mut rng);
            let value = Gamma::new(TRUE_GG.p, 1.0 / nu).unwrap();
            let gap = Exp::new(lambda.max(1e-12)).unwrap();
            let (mut t, mut last_day, mut repeats, mut spent) = (0.0_f64, 0_u32, 0_u32, 0.0_f64);
            loop {
                t += gap.sample(&mut rng);
                if t > age {
                    break;
                }
                let day = (t * 7.0).floor() as u32;
                if day != last_day {
                    repeats += 1;
                    last_day = day;
                    spent += value.sample(&mut rng).round().max(1.0);
                }
                if rand::Rng::random_bool(&mut rng, p) {
                    break;
                }
            }
            CustomerSummary {
                frequency: f64::from(repeats),
                recency: f64::from(last_day) / 7.0,
                age,
                monetary: if repeats == 0 {
                    0.0
                } else {
                    spent / f64::from(repeats)
                },
            }
        })
        .collect()
}

fn write_csv(path: &Path, data: &[CustomerSummary]) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "frequency,recency,T,monetary_value").unwrap();
    for c in data {
        writeln!(
            out,
            "{},{},{},{}",
            c.frequency, c.recency, c.age, c.monetary
        )
        .unwrap();
    }
}

fn read_csv(path: &Path) -> Vec<CustomerSummary> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| {
            let f: Vec<f64> = line.split(',').map(|v| v.parse().unwrap()).collect();
            CustomerSummary {
                frequency: f[0],
                recency: f[1],
                age: f[2],
                monetary: f[3],
            }
        })
        .collect()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

struct Timings {
    fit: f64,
    score: f64,
    /// Ours only: scoring through the one-customer-at-a-time API, without the (x, T) sharing.
    score_one_by_one: f64,
    gamma_gamma: f64,
    bgnbd: BgNbd,
    gg: GammaGamma,
    mean_expected: f64,
    mean_p_alive: f64,
}

fn ours(data: &[CustomerSummary]) -> Timings {
    let (mut fit_s, mut score_s, mut gg_s) = (Vec::new(), Vec::new(), Vec::new());
    let mut one_by_one_s = Vec::new();
    let mut last = None;
    for _ in 0..REPEATS {
        let start = Instant::now();
        let bgnbd = BgNbd::fit(data).unwrap().model;
        let fitted = Instant::now();
        let scores: Vec<(f64, f64)> = bgnbd
            .score(HORIZON, data)
            .unwrap()
            .into_iter()
            .map(|s| (s.expected_purchases, s.p_alive))
            .collect();
        let scored = Instant::now();
        let gg = GammaGamma::fit(data).unwrap().model;
        let done = Instant::now();
        let one_by_one: Vec<(f64, f64)> = data
            .par_iter()
            .map(|c| {
                Ok((
                    bgnbd.conditional_expected_purchases(HORIZON, c)?,
                    bgnbd.p_alive(c),
                ))
            })
            .collect::<Result<_, model_pipeline::models::ModelError>>()
            .unwrap();
        one_by_one_s.push(done.elapsed().as_secs_f64());
        assert_eq!(one_by_one.len(), scores.len());
        fit_s.push((fitted - start).as_secs_f64());
        score_s.push((scored - fitted).as_secs_f64());
        gg_s.push((done - scored).as_secs_f64());
        let n = scores.len() as f64;
        let mean_expected = scores.iter().map(|s| s.0).sum::<f64>() / n;
        let mean_p_alive = scores.iter().map(|s| s.1).sum::<f64>() / n;
        last = Some((bgnbd, gg, mean_expected, mean_p_alive));
    }
    let (bgnbd, gg, mean_expected, mean_p_alive) = last.unwrap();
    Timings {
        fit: median(fit_s),
        score: median(score_s),
        score_one_by_one: median(one_by_one_s),
        gamma_gamma: median(gg_s),
        bgnbd,
        gg,
        mean_expected,
        mean_p_alive,
    }
}

fn lifetimes(python: &str, csv: &Path) -> Timings {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/lifetimes_bench.py");
    let output = Command::new(python)
        .arg(&script)
        .arg(csv)
        .arg(HORIZON.to_string())
        .arg(REPEATS.to_string())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "lifetimes benchmark failed on {}:\n{}",
        csv.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let num = |path: &[&str]| -> f64 {
        let mut node = &v;
        for key in path {
            node = &node[*key];
        }
        node.as_f64()
            .unwrap_or_else(|| panic!("no number at {path:?} in {v}"))
    };
    Timings {
        fit: num(&["bgnbd_fit_s"]),
        score: num(&["bgnbd_score_s"]),
        score_one_by_one: f64::NAN,
        gamma_gamma: num(&["gamma_gamma_fit_s"]),
        bgnbd: BgNbd {
            r: num(&["bgnbd", "r"]),
            alpha: num(&["bgnbd", "alpha"]),
            a: num(&["bgnbd", "a"]),
            b: num(&["bgnbd", "b"]),
        },
        gg: GammaGamma {
            p: num(&["gamma_gamma", "p"]),
            q: num(&["gamma_gamma", "q"]),
            gamma: num(&["gamma_gamma", "v"]),
        },
        mean_expected: num(&["mean_expected"]),
        mean_p_alive: num(&["mean_p_alive"]),
    }
}

fn setup_python() -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/setup.sh");
    let output = Command::new("bash").arg(&script).output().unwrap();
    assert!(
        output.status.success(),
        "bench/setup.sh failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .lines()
        .last()
        .unwrap()
        .to_owned()
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The size arguments as they would be typed after `--`, empty for the default sizes.
fn sizes_arg(sizes: &[usize]) -> String {
    if sizes == [100_000, 1_000_000] {
        String::new()
    } else {
        let list: Vec<String> = sizes.iter().map(ToString::to_string).collect();
        format!(" -- {}", list.join(" "))
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect::<Vec<_>>();
    let sizes = if sizes.is_empty() {
        vec![100_000, 1_000_000]
    } else {
        sizes
    };
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let python = setup_python();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let mut table = String::new();
    let mut notes = String::new();
    writeln!(
        table,
        "| customers | step | lifetimes 0.11.3 (s) | ours (s) | speed-up |"
    )
    .unwrap();
    writeln!(table, "|---:|---|---:|---:|---:|").unwrap();
    for &n in &sizes {
        let csv = dir.join(format!("bgnbd-synthetic-{n}.csv"));
        write_csv(&csv, &synthetic(n, SEED));
        let data = read_csv(&csv);
        eprintln!("{n} customers: running lifetimes ({REPEATS} repeats)...");
        let theirs = lifetimes(&python, &csv);
        eprintln!("{n} customers: running ours ({REPEATS} repeats)...");
        let mine = ours(&data);
        let rows = [
            ("BG/NBD fit", theirs.fit, mine.fit),
            (
                "BG/NBD scoring (E[Y(52 weeks)] + P(alive), every customer)",
                theirs.score,
                mine.score,
            ),
            (
                "**BG/NBD fit + scoring**",
                theirs.fit + theirs.score,
                mine.fit + mine.score,
            ),
            (
                "BG/NBD scoring, ours one customer at a time (no sharing per (x, T))",
                theirs.score,
                mine.score_one_by_one,
            ),
            (
                "Gamma-Gamma fit (repeat buyers)",
                theirs.gamma_gamma,
                mine.gamma_gamma,
            ),
        ];
        for (step, t, o) in rows {
            writeln!(table, "| {n} | {step} | {t:.3} | {o:.3} | {:.1} x |", t / o).unwrap();
        }
        let (tb, mb) = (theirs.bgnbd, mine.bgnbd);
        writeln!(
            notes,
            "- {n} customers: BG/NBD lifetimes r {:.4} alpha {:.4} a {:.4} b {:.4}, ours r {:.4} alpha {:.4} a {:.4} b {:.4} \
             (drawn from r 0.243 alpha 4.414 a 0.793 b 2.426); mean E[Y(52)] lifetimes {:.5} ours {:.5}; \
             mean P(alive) lifetimes {:.5} ours {:.5}; Gamma-Gamma lifetimes p {:.3} q {:.3} gamma {:.1}, ours p {:.3} q {:.3} gamma {:.1}",
            tb.r, tb.alpha, tb.a, tb.b, mb.r, mb.alpha, mb.a, mb.b,
            theirs.mean_expected, mine.mean_expected, theirs.mean_p_alive, mine.mean_p_alive,
            theirs.gg.p, theirs.gg.q, theirs.gg.gamma, mine.gg.p, mine.gg.q, mine.gg.gamma,
        )
        .unwrap();
    }
    writeln!(
        notes,
        "- peak resident memory of the Rust benchmark process: {:.0} MB",
        peak_rss_mb()
    )
    .unwrap();
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "command: cargo bench -p model-pipeline --bench models{}",
        sizes_arg(&sizes)
    );
    println!(
        "machine: {cores} cores; /proc/loadavg before {} and after {}; times are medians of {REPEATS} runs\n",
        load_before.trim(),
        load_after.trim()
    );
    println!("{table}");
    println!("{notes}");
}
