//! Every Function fixture (tests/fixtures/<handle>/*.json, Shopify's run-log payload shape) runs
//! through wasm like Shopify runs it: the output must equal the native test's snapshot of the same
//! fixture (and the fixture's recorded `payload.output` when it has one), the log must equal the
//! snapshot's log line, and the run must stay within every limit. Native tests check the decision
//! logic; this checks that the built module, its trampoline and the provider agree with them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use wasm_runner::Runner;
use wasm_runner::budget::fixture_name;
use wasm_runner::project::{Fixture, Project, fixture_paths, native_snapshot};

#[test]
fn every_fixture_matches_its_native_snapshot_through_wasm() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap();
    let project = Project::at(root);
    let paths = fixture_paths(&project).unwrap();
    assert!(
        !paths.is_empty(),
        "no fixtures under tests/fixtures/<handle>/"
    );
    let runner = Runner::new(project).unwrap();
    let mut failures = Vec::new();
    for path in &paths {
        let name = fixture_name(path);
        let fixture = Fixture::load(path).unwrap();
        let report = match runner.run_fixture(&fixture) {
            Ok(report) => report,
            Err(error) => {
                failures.push(format!("{name}: {error}"));
                continue;
            }
        };
        if let Err(message) = report.check_limits() {
            failures.push(format!("{name}: {message}"));
        }
        let handle = path
            .parent()
            .and_then(Path::file_name)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let snapshot = native_snapshot(&runner.project, &handle, path).unwrap();
        if fixture.output.is_none() && snapshot.is_none() {
            failures.push(format!(
                "{name}: neither payload.output nor a native snapshot to compare with"
            ));
        }
        let expectations = fixture
            .output
            .iter()
            .map(|output| ("payload.output".to_owned(), output))
            .chain(
                snapshot
                    .iter()
                    .map(|s| (s.path.display().to_string(), &s.output)),
            );
        for (source, expected) in expectations {
            if *expected != report.output {
                failures.push(format!(
                    "{name}: wasm output differs from {source}\nexpected: {}\nactual:   {}",
                    serde_json::to_string(expected).unwrap(),
                    serde_json::to_string(&report.output).unwrap()
                ));
            }
        }
        // `log!` ends each message with a newline; the snapshot's log line has none.
        if let Some(log) = snapshot.as_ref().and_then(|s| s.log.as_ref())
            && report.logs.trim_end_matches('\n') != log
        {
            failures.push(format!(
                "{name}: wasm log `{}` differs from the native log `{log}`",
                report.logs
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems in {} fixtures:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n")
    );
}
