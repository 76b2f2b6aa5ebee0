//! Human-readable output: one run's report, and the budget table over many runs.

use crate::host::RunReport;
use crate::limits::group;
use std::fmt::Write as _;

/// One run's report as text: every measured figure next to its limit, then logs and output.
pub fn render_run(name: &str, report: &RunReport) -> String {
    let limits = &report.limits;
    let mut text = String::new();
    let _ = writeln!(text, "run            {name} (export `{}`)", report.export);
    let _ = writeln!(
        text,
        "cart lines     {} (limit scale factor {})",
        report.n_lines,
        limits.scale_text()
    );
    let rows = [
        ("instructions", report.instructions, limits.instructions),
        ("memory", report.memory_bytes, limits.memory_bytes),
        ("input bytes", report.input_bytes, limits.input_bytes),
        ("output bytes", report.output_bytes, limits.output_bytes),
        ("log bytes", report.log_bytes, limits.log_bytes),
        ("module bytes", report.module_bytes, limits.module_bytes),
    ];
    for (label, measured, allowed) in rows {
        let _ = writeln!(
            text,
            "{label:<14} {:>13} of {:>13}  ({})",
            group(measured),
            group(allowed),
            percent(measured, allowed)
        );
    }
    let _ = writeln!(
        text,
        "input msgpack  {} bytes",
        group(report.input_msgpack_bytes)
    );
    if report.logs.is_empty() {
        let _ = writeln!(text, "logs           (none)");
    } else {
        let _ = writeln!(text, "logs:\n{}", report.logs);
    }
    let output = serde_json::to_string_pretty(&report.output).unwrap_or_default();
    let _ = writeln!(text, "output:\n{output}");
    match report.check_limits() {
        Ok(()) => {
            let _ = writeln!(text, "limits         all within");
        }
        Err(message) => {
            let _ = writeln!(text, "LIMITS EXCEEDED: {message}");
        }
    }
    text
}

/// The `top` functions of an instrumented run by own instructions (provider calls included in the
/// caller's), with calls and inclusive instructions.
pub fn render_functions(report: &RunReport, top: usize) -> String {
    let mut text = String::new();
    let Some(functions) = &report.function_profile else {
        return text;
    };
    let mut rows = functions.clone();
    rows.sort_by_key(|row| std::cmp::Reverse(row.self_instructions));
    let _ = writeln!(
        text,
        "  {:>12} {:>7} {:>12} {:>8}  function (own instructions include provider calls it makes)",
        "own", "share", "inclusive", "calls"
    );
    for row in rows.iter().take(top) {
        // Generic instantiations can be very long; 110 characters identify the function.
        let name: String = row.name.chars().take(110).collect();
        let _ = writeln!(
            text,
            "  {:>12} {:>7} {:>12} {:>8}  {name}",
            group(row.self_instructions),
            percent(row.self_instructions, report.instructions),
            group(row.inclusive_instructions),
            group(row.calls),
        );
    }
    text
}

/// Where a profiled run's instructions went: each provider export, then the Function's own code.
pub fn render_profile(name: &str, report: &RunReport) -> String {
    let mut text = String::new();
    let Some(profile) = &report.provider_profile else {
        return text;
    };
    let _ = writeln!(
        text,
        "{name}: {} instructions, {} cart lines",
        group(report.instructions),
        report.n_lines
    );
    let mut rows: Vec<(String, u64, u64)> = profile
        .iter()
        .map(|p| (p.export.clone(), p.calls, p.instructions))
        .collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.2));
    let in_provider: u64 = rows.iter().map(|r| r.2).sum();
    rows.push((
        "(Function's own code: engine, glue, shims)".to_owned(),
        0,
        report.instructions.saturating_sub(in_provider),
    ));
    let _ = writeln!(
        text,
        "  {:<48} {:>9} {:>14} {:>7} {:>9}",
        "where", "calls", "instructions", "share", "per call"
    );
    for (export, calls, instructions) in rows {
        let per_call = instructions
            .checked_div(calls)
            .map_or_else(|| "-".to_owned(), group);
        let _ = writeln!(
            text,
            "  {export:<48} {:>9} {:>14} {:>7} {per_call:>9}",
            if calls == 0 {
                "-".to_owned()
            } else {
                group(calls)
            },
            group(instructions),
            percent(instructions, report.instructions)
        );
    }
    text
}

/// `measured / allowed` as a percentage with one decimal, computed in integers.
pub fn percent(measured: u64, allowed: u64) -> String {
    if allowed == 0 {
        return "-".to_owned();
    }
    let tenths = u128::from(measured) * 1000 / u128::from(allowed);
    format!("{}.{}%", tenths / 10, tenths % 10)
}

/// `value / floor` with two decimals.
pub fn ratio(value: u64, floor: u64) -> String {
    if floor == 0 {
        return "-".to_owned();
    }
    let hundredths = u128::from(value) * 100 / u128::from(floor);
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// One line of the budget table.
#[derive(Debug, Clone)]
pub struct TableRow {
    pub fixture: String,
    pub report: RunReport,
    /// Instructions of the read-floor Function on the same input, when there is one.
    pub floor_instructions: Option<u64>,
}

/// The budget table, headed by the command line that produced it.
pub fn render_table(rows: &[TableRow], command_line: &str) -> String {
    let header = [
        "fixture",
        "lines",
        "instructions",
        "% of limit",
        "x floor",
        "input B",
        "output B",
        "memory KB",
        "module B",
    ];
    let mut cells: Vec<[String; 9]> = Vec::new();
    for row in rows {
        let report = &row.report;
        cells.push([
            row.fixture.clone(),
            report.n_lines.to_string(),
            group(report.instructions),
            percent(report.instructions, report.limits.instructions),
            row.floor_instructions
                .map_or_else(|| "-".to_owned(), |floor| ratio(report.instructions, floor)),
            group(report.input_bytes),
            group(report.output_bytes),
            group(report.memory_bytes / 1024),
            group(report.module_bytes),
        ]);
    }
    let mut widths = header.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row.iter()) {
            *width = (*width).max(cell.len());
        }
    }
    let mut text = String::new();
    let _ = writeln!(text, "$ {command_line}");
    let line = |text: &mut String, row: &[String]| {
        let mut first = true;
        for (cell, width) in row.iter().zip(widths.iter()) {
            if first {
                let _ = write!(text, "| {cell:<width$} ");
                first = false;
            } else {
                let _ = write!(text, "| {cell:>width$} ");
            }
        }
        let _ = writeln!(text, "|");
    };
    line(&mut text, &header.map(str::to_owned));
    let separator: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&mut text, &separator);
    for row in &cells {
        line(&mut text, row);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_and_ratio_are_truncated_integers() {
        assert_eq!(percent(1_170_000, 11_000_000), "10.6%");
        assert_eq!(percent(0, 0), "-");
        assert_eq!(ratio(130, 100), "1.30");
        assert_eq!(ratio(1, 3), "0.33");
    }
}
