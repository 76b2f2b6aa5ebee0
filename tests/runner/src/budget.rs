//! The budget suite's measurements and its recorded ceilings.
//!
//! Ceilings live in `tests/budgets/ceilings.toml`, one instruction count per run name. A run fails
//! when it is more than 2 % above its ceiling (a regression) or more than 10 % below it (the record
//! is stale and must be rewritten, so that the next regression is caught from the new level).
//! Rewrite the file with `mw-run report --rewrite-ceilings`, or by running the suite with
//! `MW_UPDATE_CEILINGS=1 cargo test -p wasm-runner`.

use crate::project::{Fixture, fixture_paths};
use crate::report::TableRow;
use crate::{Runner, RunnerError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Allowed rise above a ceiling, in percent.
pub const REGRESSION_PERCENT: u64 = 2;
/// Allowed fall below a ceiling before the record counts as stale, in percent.
pub const STALE_PERCENT: u64 = 10;

/// The environment variable that makes the test suite rewrite the ceilings file.
pub const UPDATE_ENV: &str = "MW_UPDATE_CEILINGS";

/// Where the ceilings are recorded, relative to the checkout root.
pub fn ceilings_path(root: &Path) -> PathBuf {
    root.join("tests").join("budgets").join("ceilings.toml")
}

/// Why the ceilings file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CeilingsError {
    #[error("reading {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}: not a valid ceilings file: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("writing {path}: {message}")]
    Write { path: PathBuf, message: String },
}

#[derive(serde::Deserialize, serde::Serialize, Default)]
struct CeilingsFile {
    #[serde(default)]
    instructions: BTreeMap<String, u64>,
}

/// The recorded ceilings by run name; an absent file is an empty record.
pub fn read_ceilings(root: &Path) -> Result<BTreeMap<String, u64>, CeilingsError> {
    let path = ceilings_path(root);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => {
            return Err(CeilingsError::Read {
                path,
                message: e.to_string(),
            });
        }
    };
    let file: CeilingsFile = toml::from_str(&text).map_err(|e| CeilingsError::Parse {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(file.instructions)
}

/// Writes every row's instruction count as its new ceiling; returns the file written.
pub fn write_ceilings(root: &Path, rows: &[TableRow]) -> Result<PathBuf, CeilingsError> {
    let path = ceilings_path(root);
    let file = CeilingsFile {
        instructions: rows
            .iter()
            .map(|row| (row.fixture.clone(), row.report.instructions))
            .collect(),
    };
    let body = toml::to_string(&file).map_err(|e| CeilingsError::Write {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let text = format!(
        "# Instruction ceilings of every budget run, measured by tests/runner (wasm, fuel counted like\n\
         # Shopify's function-runner). A run more than {REGRESSION_PERCENT} % above its ceiling is a regression; more than\n\
         # {STALE_PERCENT} % below means this record is stale. Rewrite with `mw-run report --rewrite-ceilings`\n\
         # or `{UPDATE_ENV}=1 cargo test -p wasm-runner`.\n\n{body}"
    );
    let write_error = |e: std::io::Error| CeilingsError::Write {
        path: path.clone(),
        message: e.to_string(),
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(write_error)?;
    }
    std::fs::write(&path, text).map_err(write_error)?;
    Ok(path)
}

/// Checks a measured count against its recorded ceiling; the error says which way it broke.
pub fn check_ceiling(name: &str, recorded: Option<u64>, measured: u64) -> Result<(), String> {
    let Some(recorded) = recorded else {
        return Err(format!(
            "{name}: no ceiling recorded (measured {measured}); record it with `{UPDATE_ENV}=1 cargo test -p wasm-runner`"
        ));
    };
    let measured_wide = u128::from(measured) * 100;
    if measured_wide > u128::from(recorded) * u128::from(100 + REGRESSION_PERCENT) {
        return Err(format!(
            "{name}: regression: {measured} instructions, more than {REGRESSION_PERCENT} % above the ceiling {recorded}"
        ));
    }
    if measured_wide < u128::from(recorded) * u128::from(100 - STALE_PERCENT) {
        return Err(format!(
            "{name}: {measured} instructions is more than {STALE_PERCENT} % below the ceiling {recorded}: \
             update the record with `{UPDATE_ENV}=1 cargo test -p wasm-runner`"
        ));
    }
    Ok(())
}

/// The run name of a fixture: `<handle folder>/<file stem>`.
pub fn fixture_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let handle = path
        .parent()
        .and_then(Path::file_name)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{handle}/{stem}")
}

/// Runs every fixture through wasm; one table row each (fixtures have no read floor).
pub fn measure_fixtures(runner: &Runner) -> Result<Vec<(Fixture, TableRow)>, RunnerError> {
    let mut rows = Vec::new();
    for path in fixture_paths(&runner.project)? {
        let fixture = Fixture::load(&path)?;
        let report = runner.run_fixture(&fixture)?;
        rows.push((
            fixture,
            TableRow {
                fixture: fixture_name(&path),
                report,
                floor_instructions: None,
            },
        ));
    }
    Ok(rows)
}

/// Every row of the budget table: the fixtures, then the generated budget carts.
pub fn measure_all(runner: &Runner) -> Result<Vec<TableRow>, RunnerError> {
    let mut rows: Vec<TableRow> = measure_fixtures(runner)?
        .into_iter()
        .map(|(_, row)| row)
        .collect();
    rows.extend(crate::carts::measure_budget_carts(runner)?);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_band_fails_in_both_directions() {
        assert!(check_ceiling("x", Some(1000), 1000).is_ok());
        assert!(check_ceiling("x", Some(1000), 1020).is_ok());
        assert!(check_ceiling("x", Some(1000), 900).is_ok());
        let high = check_ceiling("x", Some(1000), 1021).unwrap_err();
        assert!(high.contains("regression"), "{high}");
        let low = check_ceiling("x", Some(1000), 899).unwrap_err();
        assert!(low.contains("below the ceiling"), "{low}");
        let missing = check_ceiling("x", None, 5).unwrap_err();
        assert!(missing.contains("no ceiling recorded"), "{missing}");
    }
}
