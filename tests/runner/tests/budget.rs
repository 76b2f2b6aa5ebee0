//! The budget suite: generated carts of 1 to 2,000 lines through the offers and bundles Functions
//! and their read floors, plus every fixture, checked against Shopify's limits and the recorded
//! instruction ceilings (tests/budgets/ceilings.toml), and each Function's budget goals.
//!
//! Run with `--nocapture` to see the table. After an intended change in instruction counts,
//! rewrite the ceilings with `MW_UPDATE_CEILINGS=1 cargo test -p wasm-runner --test budget`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use wasm_runner::budget::{self, UPDATE_ENV, check_ceiling};
use wasm_runner::bundle_carts;
use wasm_runner::carts::{self, BudgetRun};
use wasm_runner::project::Project;
use wasm_runner::report::{TableRow, render_table};
use wasm_runner::{Runner, RunnerError};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

struct Measured {
    rows: Vec<TableRow>,
    budget_runs: Vec<BudgetRun>,
}

fn measured() -> &'static Measured {
    static MEASURED: OnceLock<Measured> = OnceLock::new();
    MEASURED.get_or_init(|| {
        let runner = Runner::new(Project::at(root())).unwrap();
        let collect = || -> Result<Measured, RunnerError> {
            let mut rows: Vec<TableRow> = budget::measure_fixtures(&runner)?
                .into_iter()
                .map(|(_, row)| row)
                .collect();
            let budget_runs = carts::run_budget_carts(&runner)?;
            for run in &budget_runs {
                rows.push(TableRow {
                    fixture: carts::budget_name(&run.export, run.n_lines),
                    floor_instructions: Some(run.floor.instructions),
                    report: run.function.clone(),
                });
                rows.push(TableRow {
                    fixture: carts::floor_name(&run.export, run.n_lines),
                    floor_instructions: None,
                    report: run.floor.clone(),
                });
            }
            rows.extend(carts::measure_largest_decisions(&runner)?);
            rows.extend(bundle_carts::measure_largest_bundles(&runner)?);
            Ok(Measured { rows, budget_runs })
        };
        let measured = collect().unwrap_or_else(|error| panic!("{error}"));
        println!(
            "{}",
            render_table(
                &measured.rows,
                "cargo test -p wasm-runner --test budget -- --nocapture"
            )
        );
        measured
    })
}

#[test]
fn every_run_is_within_shopify_limits() {
    let failures: Vec<String> = measured()
        .rows
        .iter()
        .filter_map(|row| {
            row.report
                .check_limits()
                .err()
                .map(|e| format!("{}: {e}", row.fixture))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn instruction_counts_stay_within_their_recorded_ceilings() {
    let measured = measured();
    let root = root();
    if std::env::var_os(UPDATE_ENV).is_some() {
        let path = budget::write_ceilings(&root, &measured.rows).unwrap();
        println!("{UPDATE_ENV} is set: rewrote {}", path.display());
        return;
    }
    let ceilings = budget::read_ceilings(&root).unwrap();
    let mut failures: Vec<String> = measured
        .rows
        .iter()
        .filter_map(|row| {
            check_ceiling(
                &row.fixture,
                ceilings.get(&row.fixture).copied(),
                row.report.instructions,
            )
            .err()
        })
        .collect();
    for name in ceilings.keys() {
        if !measured.rows.iter().any(|row| &row.fixture == name) {
            failures.push(format!(
                "{name}: a ceiling is recorded but nothing measures it any more; rewrite with `{UPDATE_ENV}=1`"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The offers Function's goals from issue 3, on every budget cart of both targets.
#[test]
#[ignore = "the offers Function misses these goals (1.97 M instructions at 200 lines, 1.50 x its read floor of 1.31 M; 75 K at 1 line, 1.84 x; 2.12 x at 10 lines; 1.42 x at 2,000 lines, where the 5 x headroom goal is met); run with --ignored, see issue 3"]
fn the_offers_function_meets_its_budget_goals() {
    let runs: Vec<&BudgetRun> = measured()
        .budget_runs
        .iter()
        .filter(|run| run.export != bundle_carts::BUNDLES_TARGET.1)
        .collect();
    assert!(
        !runs.is_empty(),
        "no budget runs: the offers extension was not found under extensions/"
    );
    let failures = goal_failures(&runs, Some(60_000));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The bundles Function's goals from issue 6 (issue 3's, without the offers' 1-line figure), on
/// every bundles budget cart.
#[test]
#[ignore = "the bundles Function misses these goals (2.52 M instructions at 200 lines, 1.48 x its read floor of 1.70 M; 1.79 x at 1 line, 1.95 x at 10, 2.01 x at 50, where the fingerprints and the output dominate; 500 and 2,000 lines meet them: 1.23 x and 1.12 x, 5.9 x headroom at 2,000); run with --ignored, see issue 6"]
fn the_bundles_function_meets_its_budget_goals() {
    let runs: Vec<&BudgetRun> = measured()
        .budget_runs
        .iter()
        .filter(|run| run.export == bundle_carts::BUNDLES_TARGET.1)
        .collect();
    assert!(
        !runs.is_empty(),
        "no budget runs: the bundles extension was not found under extensions/"
    );
    let failures = goal_failures(&runs, None);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every goal a budget run misses: at most `one_line_goal` instructions at 1 line (when given),
/// 1.6 M at 200 lines, 5x headroom at 2,000 lines, 1.3x the read floor, a module of at most
/// 128 kB (128,000 bytes, the figure `conformance/tests/wasm_size.rs` holds every module to) and
/// an output under 20 kB.
fn goal_failures(runs: &[&BudgetRun], one_line_goal: Option<u64>) -> Vec<String> {
    let mut failures = Vec::new();
    for run in runs {
        let name = carts::budget_name(&run.export, run.n_lines);
        let report = &run.function;
        let goal = |failures: &mut Vec<String>, ok: bool, what: String| {
            if !ok {
                failures.push(format!("{name}: {what}"));
            }
        };
        match (run.n_lines, one_line_goal) {
            (1, Some(most)) => goal(
                &mut failures,
                report.instructions <= most,
                format!(
                    "{} instructions at 1 line, goal at most {most}",
                    report.instructions
                ),
            ),
            (200, _) => goal(
                &mut failures,
                report.instructions <= 1_600_000,
                format!(
                    "{} instructions at 200 lines, goal at most 1,600,000",
                    report.instructions
                ),
            ),
            (2_000, _) => goal(
                &mut failures,
                report.instructions.saturating_mul(5) <= report.limits.instructions,
                format!(
                    "{} instructions at 2,000 lines leaves less than 5x headroom under {}",
                    report.instructions, report.limits.instructions
                ),
            ),
            _ => {}
        }
        goal(
            &mut failures,
            u128::from(report.instructions) * 10 <= u128::from(run.floor.instructions) * 13,
            format!(
                "{} instructions is more than 1.3x the read floor's {}",
                report.instructions, run.floor.instructions
            ),
        );
        goal(
            &mut failures,
            report.module_bytes <= 128_000,
            format!(
                "module is {} bytes, goal at most 128,000",
                report.module_bytes
            ),
        );
        goal(
            &mut failures,
            report.output_bytes < 20_000,
            format!("output is {} bytes, goal under 20,000", report.output_bytes),
        );
    }
    failures
}
