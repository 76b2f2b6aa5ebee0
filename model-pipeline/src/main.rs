//! `marginwise`: the pipeline's command line (generate, score, demo, bench).
//!
//! A thin edge over the library: it parses arguments, turns library errors into messages that
//! name the file, line and field, and prints tables. Everything it runs is tested in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use marginwise_engine::Currency;
use model_pipeline::generate::{self, DEFAULT_OPT_OUT_TAG, GeneratorConfig};
use model_pipeline::ingest::IngestOptions;
use model_pipeline::pipeline::{self, RunOptions};
use model_pipeline::progress::Progress;
use model_pipeline::score::ScoreOptions;
use model_pipeline::{Timing, demo, peak_memory_bytes};

#[derive(Parser)]
#[command(
    name = "marginwise",
    version,
    about = "Score a Shopify store's history into the metafields marginwise's checkout Functions read"
)]
struct Cli {
    /// Hide progress bars (they are hidden anyway when stderr is not a terminal).
    #[arg(long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct ScoreArgs {
    /// Skip malformed lines (counted in the summary) instead of stopping at the first one.
    #[arg(long)]
    skip_bad: bool,
    /// Customer tag meaning "do not personalize" (besides dataSaleOptOut).
    #[arg(long, default_value = DEFAULT_OPT_OUT_TAG)]
    opt_out_tag: String,
    /// Shop currency (ISO code); read from the export when absent.
    #[arg(long)]
    currency: Option<String>,
    /// Minimum number of orders containing both products for a complement.
    #[arg(long, default_value_t = ScoreOptions::default().min_support)]
    min_support: u32,
    /// Monthly discount rate of the 12-month CLV.
    #[arg(long, default_value_t = ScoreOptions::default().monthly_discount_rate)]
    monthly_discount_rate: f64,
}

#[derive(Subcommand)]
enum Command {
    /// Write a deterministic sample store as bulk-operation JSONL.
    Generate {
        #[arg(long, default_value_t = 20_000)]
        customers: u32,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Score an export folder (customers.jsonl, products.jsonl, orders.jsonl) into a plan.
    Score {
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        args: ScoreArgs,
        /// Do not write the HTML report.
        #[arg(long)]
        no_report: bool,
        /// Print the per-stage timing table with peak memory (used by `bench`).
        #[arg(long)]
        timings: bool,
    },
    /// The README's main job: sample store -> plan + report -> checkout scenarios.
    Demo {
        #[arg(long, default_value = "out")]
        out: PathBuf,
        #[arg(long, default_value_t = 20_000)]
        customers: u32,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// The merchant policy to evaluate (default: the bundled sample policy).
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Generate a store of this many customers and time the pipeline to the plan.
    Bench {
        #[arg(long, default_value_t = 1_000_000)]
        customers: u32,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Where the generated store and plan go (reused when already generated).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn score_options(args: &ScoreArgs) -> anyhow::Result<RunOptions> {
    let currency = match &args.currency {
        None => None,
        Some(code) => Some(
            Currency::from_code(code)
                .with_context(|| format!("--currency {code}: not an ISO 4217 code"))?,
        ),
    };
    Ok(RunOptions {
        ingest: IngestOptions {
            skip_bad: args.skip_bad,
            opt_out_tag: Some(args.opt_out_tag.clone()).filter(|t| !t.is_empty()),
            currency,
        },
        score: ScoreOptions {
            min_support: args.min_support,
            monthly_discount_rate: args.monthly_discount_rate,
        },
        skip_report: false,
    })
}

fn print_timings(timings: &[Timing]) {
    println!("| stage | wall s | CPU s (all threads) |");
    println!("|---|---:|---:|");
    let (mut wall, mut cpu) = (0.0, 0.0);
    for t in timings {
        println!(
            "| {} | {:.2} | {:.2} |",
            t.stage, t.wall_seconds, t.cpu_seconds
        );
        wall += t.wall_seconds;
        cpu += t.cpu_seconds;
    }
    println!("| **total** | **{wall:.2}** | **{cpu:.2}** |");
    match peak_memory_bytes() {
        Some(bytes) => println!("| peak memory (VmHWM) | {:.0} MB | |", bytes as f64 / 1e6),
        None => println!("| peak memory (VmHWM) | unavailable | |"),
    }
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!(
            "\nload average when done (1/5/15 min, other processes included): {}",
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}

fn bench(customers: u32, seed: u64, dir: Option<PathBuf>, quiet: bool) -> anyhow::Result<()> {
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("marginwise-bench-{customers}-{seed}"))
    });
    let store = dir.join("store");
    let marker = store.join("complete");
    if !marker.exists() {
        let started = Instant::now();
        let generated = generate::generate(
            &GeneratorConfig { customers, seed },
            &store,
            Progress::new(quiet),
        )?;
        std::fs::write(&marker, b"")?;
        println!(
            "generated {} customers, {} orders, {} line items ({:.0} MB) in {:.1} s (not part of the pipeline time)",
            generated.customers,
            generated.orders,
            generated.line_items,
            generated.bytes as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
    } else {
        println!("reusing the store generated in {}", store.display());
    }
    // The pipeline runs in a child process so that its peak memory is its own, not the
    // generator's.
    let exe = std::env::current_exe().context("locating the marginwise binary")?;
    let out = dir.join("plan");
    let status = std::process::Command::new(exe)
        .arg("--quiet")
        .arg("score")
        .arg("--input")
        .arg(&store)
        .arg("--out")
        .arg(&out)
        .arg("--no-report")
        .arg("--timings")
        .status()
        .context("running marginwise score")?;
    anyhow::ensure!(status.success(), "marginwise score failed: {status}");
    println!(
        "\ncommand: cargo run --release -p model-pipeline --bin marginwise -- bench --customers {customers} --seed {seed}"
    );
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let progress = Progress::new(cli.quiet);
    match cli.command {
        Command::Generate {
            customers,
            seed,
            out,
        } => {
            let generated =
                generate::generate(&GeneratorConfig { customers, seed }, &out, progress)?;
            println!(
                "wrote {} customers, {} products ({} variants), {} orders, {} line items to {}",
                generated.customers,
                generated.products,
                generated.variants,
                generated.orders,
                generated.line_items,
                out.display()
            );
        }
        Command::Score {
            input,
            out,
            args,
            no_report,
            timings,
        } => {
            let mut options = score_options(&args)?;
            options.skip_report = no_report;
            let outcome = pipeline::run(&input, &out, &options, progress)?;
            print!("{}", pipeline::summary_text(&outcome));
            if let Some(report) = &outcome.report {
                println!("report: {}", report.display());
            }
            if timings {
                println!();
                print_timings(&outcome.timings);
            }
        }
        Command::Demo {
            out,
            customers,
            seed,
            policy,
        } => {
            demo::run(
                &demo::DemoOptions {
                    out,
                    customers,
                    seed,
                    policy,
                },
                progress,
            )?;
        }
        Command::Bench {
            customers,
            seed,
            dir,
        } => bench(customers, seed, dir, cli.quiet)?,
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
