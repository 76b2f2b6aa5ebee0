//! `marginwise score`: read an export folder, score it, write the plan, the summary and the report.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::ingest::{self, IngestOptions, IngestStats, StoreData};
use crate::plan::{self, PlanCounts};
use crate::progress::Progress;
use crate::report;
use crate::score::{self, ScoreOptions, Scored};

/// File names of the summary and the report inside the output folder.
pub const SUMMARY_FILE: &str = "summary.json";
pub const REPORT_FILE: &str = "report.html";

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub ingest: IngestOptions,
    pub score: ScoreOptions,
    /// Skip the HTML report (the benchmark measures the path to the plan).
    pub skip_report: bool,
    /// The state database whose suppression list the plan honours; `None`: the one in the
    /// output folder ([`crate::sync::state::STATE_FILE`]).
    pub state_file: Option<PathBuf>,
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    pub data: StoreData,
    pub scored: Scored,
    pub plan: PlanCounts,
    pub out_dir: PathBuf,
    pub report: Option<PathBuf>,
    /// Stage name and seconds, in order.
    pub timings: Vec<crate::Timing>,
}

/// Runs the whole pipeline.
pub fn run(
    input: &Path,
    out: &Path,
    options: &RunOptions,
    progress: Progress,
) -> anyhow::Result<Outcome> {
    // Settings are checked before a byte is read: a bad one should not cost a read of the export.
    options.score.validate()?;
    let mut timings = Vec::new();
    let started = crate::Stopwatch::start();
    let data = ingest::read_store(input, &options.ingest, progress)?;
    timings.push(started.stop("read customers, products, orders"));

    let scored = score::score(&data, &options.score, progress)
        .with_context(|| format!("scoring the store in {}", input.display()))?;
    timings.extend(scored.timings.iter().copied());

    let started = crate::Stopwatch::start();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let state_file = options
        .state_file
        .clone()
        .unwrap_or_else(|| out.join(crate::sync::state::STATE_FILE));
    let plan = plan::write_plan(&scored, data.currency, out, &state_file)?;
    write_summary(&data.stats, &scored, &plan, &out.join(SUMMARY_FILE))?;
    timings.push(started.stop("write plan + summary"));

    let mut report_path = None;
    if !options.skip_report {
        let started = crate::Stopwatch::start();
        let path = out.join(REPORT_FILE);
        let html = report::render(&data, &scored, &plan);
        std::fs::write(&path, html).with_context(|| format!("writing {}", path.display()))?;
        report_path = Some(path);
        timings.push(started.stop("report"));
    }
    Ok(Outcome {
        data,
        scored,
        plan,
        out_dir: out.to_path_buf(),
        report: report_path,
        timings,
    })
}

fn write_summary(
    stats: &IngestStats,
    scored: &Scored,
    plan: &PlanCounts,
    path: &Path,
) -> anyhow::Result<()> {
    let segments: serde_json::Map<String, serde_json::Value> = scored
        .segment_counts()
        .into_iter()
        .map(|(segment, n)| (segment.code().to_string(), n.into()))
        .collect();
    let summary = serde_json::json!({
        "input": stats,
        "plan": plan,
        "customers": {
            "profiles": scored.customers.len(),
            "opted_out": scored.opted_out.len(),
            "without_orders": scored.customers_without_orders,
            "unscored": scored.unscored,
            "unscored_example": scored.unscored_example,
            "left_out_of_spend_fit": scored.spend_fit_excluded,
            "left_out_of_spend_fit_examples": scored.spend_fit_excluded_examples,
        },
        "bundle_parents": {
            "flagged": scored.bundle_parents_flagged,
            "not_in_catalog": scored.bundle_parents_not_in_catalog,
        },
        "segments": segments,
        "thresholds": scored.thresholds,
        "bgnbd": {
            "r": scored.bgnbd.model.r, "alpha": scored.bgnbd.model.alpha,
            "a": scored.bgnbd.model.a, "b": scored.bgnbd.model.b,
            "log_likelihood": scored.bgnbd.log_likelihood,
            "standard_errors": scored.bgnbd.standard_errors,
            "converged": scored.bgnbd.converged,
        },
        "gamma_gamma": {
            "p": scored.gamma_gamma.model.p, "q": scored.gamma_gamma.model.q,
            "gamma": scored.gamma_gamma.model.gamma,
            "log_likelihood": scored.gamma_gamma.log_likelihood,
            "standard_errors": scored.gamma_gamma.standard_errors,
            "converged": scored.gamma_gamma.converged,
        },
        "complements": {
            "ranking": scored.complements.ranking,
            "min_support": scored.complements.min_support,
            "offline_evaluation": scored.complements.evaluation,
        },
        "fit_check": scored.fit_check,
    });
    let text = serde_json::to_string_pretty(&summary)?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// The human-readable summary printed after a run.
pub fn summary_text(outcome: &Outcome) -> String {
    use std::fmt::Write as _;
    let s = &outcome.scored;
    let st = &outcome.data.stats;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "read {} customers, {} products ({} variants), {} orders with {} line items",
        outcome.data.customers.len(),
        outcome.data.catalog.products.len(),
        outcome.data.catalog.variants.len(),
        st.orders,
        st.line_items
    );
    let _ = writeln!(
        out,
        "left out: {} cancelled/test orders, {} guest orders (complements only), {} orders of opted-out customers, {} orders of customers not in {} (complements only), {} line items of products not in {} (in order values, not in complements), {} bad lines skipped",
        st.cancelled_or_test_orders,
        st.guest_orders,
        st.orders_of_opted_out_customers,
        st.orders_of_unknown_customers,
        ingest::CUSTOMERS_FILE,
        st.line_items_of_unknown_products,
        ingest::PRODUCTS_FILE,
        st.bad_lines
    );
    for example in &st.bad_line_examples {
        let _ = writeln!(out, "  skipped: {example}");
    }
    let m = &s.bgnbd.model;
    let _ = writeln!(
        out,
        "BG/NBD r={:.4} alpha={:.4} a={:.4} b={:.4} (LL {:.1}); Gamma-Gamma p={:.4} q={:.4} gamma={:.2}",
        m.r,
        m.alpha,
        m.a,
        m.b,
        s.bgnbd.log_likelihood,
        s.gamma_gamma.model.p,
        s.gamma_gamma.model.q,
        s.gamma_gamma.model.gamma
    );
    let t = &s.thresholds;
    let _ = writeln!(
        out,
        "segment thresholds: new if one order and age < {:.1} weeks; lapsed if E[orders 12m] < {:.3}; at risk if P(alive) < {:.3}; loyal if CLV >= {:.0} minor units",
        t.new_max_age_weeks, t.lapsed_max_expected_orders, t.at_risk_max_p_alive, t.loyal_min_clv
    );
    let counts: Vec<String> = s
        .segment_counts()
        .iter()
        .map(|(seg, n)| format!("{} {}", seg.code(), n))
        .collect();
    let _ = writeln!(out, "segments: {}", counts.join(", "));
    let _ = writeln!(
        out,
        "complements (min support {}, ranking chosen: {}), leave-last-order-out evaluation:",
        s.complements.min_support,
        s.complements.ranking.name()
    );
    let _ = writeln!(
        out,
        "  {:<12} {:>9} {:>8} {:>8}",
        "ranking", "anchors", "HR@5", "NDCG@5"
    );
    for row in &s.complements.evaluation {
        let _ = writeln!(
            out,
            "  {:<12} {:>9} {:>8.4} {:>8.4}",
            row.ranking.name(),
            row.anchors,
            row.hit_rate_at_5,
            row.ndcg_at_5
        );
    }
    let _ = writeln!(
        out,
        "plan: {} profiles, {} variants, {} profile deletions (opted out) in {}{}",
        outcome.plan.profiles,
        outcome.plan.variants,
        outcome.plan.deletions,
        outcome.out_dir.display(),
        if outcome.plan.suppressed > 0 {
            format!(
                " ({} customers on the suppression list left out)",
                outcome.plan.suppressed
            )
        } else {
            String::new()
        }
    );
    if s.spend_fit_excluded > 0 {
        let examples: Vec<String> = s
            .spend_fit_excluded_examples
            .iter()
            .map(u64::to_string)
            .collect();
        let _ = writeln!(
            out,
            "{} repeat buyers whose repeat orders were all free are left out of the Gamma-Gamma fit (it needs a positive mean value) and valued at its population mean, e.g. {} {}",
            s.spend_fit_excluded,
            if examples.len() == 1 {
                "customer"
            } else {
                "customers"
            },
            examples.join(", ")
        );
    }
    if s.bundle_parents_flagged > 0 || !s.bundle_parents_not_in_catalog.is_empty() {
        let missing: Vec<String> = s
            .bundle_parents_not_in_catalog
            .iter()
            .map(u64::to_string)
            .collect();
        let _ = write!(
            out,
            "bundle parents: {} variants flagged",
            s.bundle_parents_flagged
        );
        if missing.is_empty() {
            let _ = writeln!(out);
        } else {
            let _ = writeln!(
                out,
                "; not in {} (no value written): {}",
                ingest::PRODUCTS_FILE,
                missing.join(", ")
            );
        }
    }
    if s.unscored > 0 {
        let _ = writeln!(
            out,
            "{} customers could not be scored (no profile), e.g. {}",
            s.unscored,
            s.unscored_example.as_deref().unwrap_or("")
        );
    }
    out
}
