//! The runner's host against a hand-written Wasm API module (tests/wat/api_probe.wat): every
//! trampolined import, the provider protocol, the fuel model and the limit checks.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::json;
use std::path::Path;
use std::sync::OnceLock;
use wasm_runner::Runner;
use wasm_runner::host::{FunctionModule, HostError};
use wasm_runner::limits::LimitKind;
use wasm_runner::project::Project;

fn runner() -> &'static (Runner, FunctionModule) {
    static RUNNER: OnceLock<(Runner, FunctionModule)> = OnceLock::new();
    RUNNER.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let runner = Runner::new(Project::at(root.canonicalize().unwrap())).unwrap();
        let wasm =
            wat::parse_file(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wat/api_probe.wat"))
                .unwrap();
        let module = runner.load_wasm(&wasm, "api_probe.wat").unwrap();
        (runner, module)
    })
}

fn run(
    export: &str,
    input: serde_json::Value,
) -> Result<wasm_runner::host::RunReport, wasm_runner::RunnerError> {
    let (runner, module) = runner();
    runner.run_module(module, export, &input, export)
}

#[test]
fn every_shim_moves_the_right_bytes() {
    let report = run("run", json!({"items": [1, 2, 3], "name": "Ada Lovelace"})).unwrap();
    assert_eq!(
        report.output,
        json!({"greeting": "Ada Lovelace", "items": 3})
    );
    assert_eq!(report.logs, "ran");
    assert_eq!(report.log_bytes, 3);
    assert_eq!(
        report.input_bytes,
        r#"{"items":[1,2,3],"name":"Ada Lovelace"}"#.len() as u64
    );
    assert_eq!(
        report.output_bytes,
        r#"{"greeting":"Ada Lovelace","items":3}"#.len() as u64
    );
    assert!(report.check_limits().is_ok());
    // The provider does real work (lazy msgpack walks), so the count is far above the probe's own
    // handful of operators; the exact figure is pinned by the budget ceilings, not here.
    assert!(report.instructions > 100, "{}", report.instructions);
}

#[test]
fn fuel_counts_operators_like_shopify() {
    let empty = run("empty", json!({})).unwrap().instructions;
    let spin = run("spin", json!({})).unwrap().instructions;
    let copy = run("copy", json!({})).unwrap().instructions;
    // loop/end are free, the five body operators cost one each.
    assert_eq!(spin - empty, 5_002);
    // memory.copy costs one operator whatever its length.
    assert_eq!(copy - empty, 4);
}

#[test]
fn memory_is_the_largest_requested_size() {
    let report = run("empty", json!({})).unwrap();
    // At least the probe's own page and the provider's initial memory; page-aligned.
    assert!(report.memory_bytes >= 65_536, "{}", report.memory_bytes);
    assert_eq!(report.memory_bytes % 65_536, 0);
}

#[test]
fn logs_over_the_limit_are_reported_by_name() {
    let report = run("shout", json!({})).unwrap();
    // The provider keeps one byte more than the limit so that truncation is visible.
    assert_eq!(report.log_bytes, 1_001);
    let exceeded = report.exceeded();
    assert_eq!(exceeded.len(), 1);
    assert_eq!(exceeded[0].limit, LimitKind::Logs);
    assert_eq!(
        report.check_limits().unwrap_err(),
        "log size limit exceeded: 1,001 bytes, allowed 1,000 bytes"
    );
}

#[test]
fn a_trap_is_an_error_naming_the_export() {
    let error = run("trap", json!({})).unwrap_err();
    let text = error.to_string();
    assert!(text.contains("function trapped in `trap`"), "{text}");
}

#[test]
fn a_missing_export_is_named() {
    let error = run("nope", json!({})).unwrap_err();
    let wasm_runner::RunnerError::Host { source, .. } = error else {
        panic!("{error}")
    };
    assert!(matches!(source, HostError::MissingExport { ref export } if export == "nope"));
}

#[test]
fn a_module_without_the_wasm_api_is_refused() {
    let (runner, _) = runner();
    let wasm =
        wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "run")))"#).unwrap();
    let error = runner.load_wasm(&wasm, "plain.wat").err().unwrap();
    assert_eq!(
        error.to_string(),
        "plain.wat: function module does not import `shopify_function_v2`: it does not use the Wasm API"
    );
}

#[test]
fn instruction_limits_scale_with_cart_lines() {
    let lines: Vec<_> = (0..400).map(|i| json!({"id": i})).collect();
    let report = run("empty", json!({"cart": {"lines": lines}})).unwrap();
    assert_eq!(report.n_lines, 400);
    assert_eq!(report.limits.instructions, 22_000_000);
    assert_eq!(report.limits.input_bytes, 256_000);
}

#[test]
fn profiling_splits_the_same_total_between_provider_and_function() {
    let (runner, module) = runner();
    let input = json!({"items": [1, 2, 3], "name": "Ada Lovelace"});
    let plain = runner.run_module(module, "run", &input, "run").unwrap();
    let profiled = runner
        .run_module_profiled(module, "run", &input, "run")
        .unwrap();
    assert_eq!(profiled.instructions, plain.instructions);
    assert_eq!(profiled.output, plain.output);
    let profile = profiled.provider_profile.unwrap();
    let calls = |export: &str| profile.iter().find(|p| p.export == export).map(|p| p.calls);
    assert_eq!(calls("_shopify_function_input_get"), Some(1));
    assert_eq!(calls("_shopify_function_output_new_utf8_str"), Some(2));
    let in_provider: u64 = profile.iter().map(|p| p.instructions).sum();
    assert!(in_provider < plain.instructions);
}
