//! `marginwise compile-bundles`: with `--offers-policy`, a bundle policy whose holdout is not the
//! discount policy's is refused and nothing is printed; without it, stderr says the holdouts were
//! not compared.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SAMPLE_POLICY: &str = include_str!("../sample/policy.json");
const SAMPLE_BUNDLE_POLICY: &str = include_str!("../sample/bundle-policy.json");
const SAMPLE_SALT: &str = "\"salt\": \"sample-2026\"";

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("compile_bundles")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes the two policies into `dir` and runs compile-bundles on them (`--offers-policy` only
/// when `offers` is given).
fn compile_bundles(dir: &Path, bundle_policy: &str, offers: Option<&str>) -> (Output, PathBuf) {
    let bundle_file = dir.join("bundle-policy.json");
    std::fs::write(&bundle_file, bundle_policy).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_marginwise"));
    command
        .args(["--quiet", "compile-bundles", "--policy"])
        .arg(&bundle_file);
    if let Some(offers) = offers {
        let offers_file = dir.join("policy.json");
        std::fs::write(&offers_file, offers).unwrap();
        command.arg("--offers-policy").arg(&offers_file);
    }
    (command.output().unwrap(), bundle_file)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Regression (the two Functions' holdouts were never compared, so customers held out of offers
/// could still get bundle discounts): a different salt is refused, naming both values and files,
/// and stdout stays empty so nothing half-checked is pasted into a mutation.
#[test]
fn a_bundle_policy_with_another_salt_is_refused() {
    let dir = scratch("salt");
    assert!(SAMPLE_BUNDLE_POLICY.contains(SAMPLE_SALT));
    let bundle = SAMPLE_BUNDLE_POLICY.replace(SAMPLE_SALT, "\"salt\": \"bundles-2026\"");
    let (run, bundle_file) = compile_bundles(&dir, &bundle, Some(SAMPLE_POLICY));
    let stderr = text(&run.stderr);
    assert!(!run.status.success(), "{stderr}");
    assert_eq!(text(&run.stdout), "");
    let expected = format!(
        "error: the holdouts differ: the offers policy {} has holdout share_bps 1000, salt \
         \"sample-2026\", the bundle policy {} has holdout share_bps 1000, salt \"bundles-2026\"",
        dir.join("policy.json").display(),
        bundle_file.display()
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
}

#[test]
fn a_bundle_policy_without_the_offers_holdout_is_refused() {
    let dir = scratch("absent");
    let mut bundle: serde_json::Value = serde_json::from_str(SAMPLE_BUNDLE_POLICY).unwrap();
    bundle.as_object_mut().unwrap().remove("holdout").unwrap();
    let (run, bundle_file) = compile_bundles(&dir, &bundle.to_string(), Some(SAMPLE_POLICY));
    let stderr = text(&run.stderr);
    assert!(!run.status.success(), "{stderr}");
    assert_eq!(text(&run.stdout), "");
    assert!(
        stderr.contains(&format!(
            "the bundle policy {} has no holdout;",
            bundle_file.display()
        )),
        "{stderr}"
    );
    // A different share, same salt.
    let bundle = SAMPLE_BUNDLE_POLICY.replace("\"share_bps\": 1000", "\"share_bps\": 500");
    let (run, _) = compile_bundles(&dir, &bundle, Some(SAMPLE_POLICY));
    let stderr = text(&run.stderr);
    assert!(!run.status.success(), "{stderr}");
    assert!(
        stderr.contains("has holdout share_bps 500, salt \"sample-2026\""),
        "{stderr}"
    );
}

#[test]
fn equal_holdouts_compile_without_a_note() {
    let dir = scratch("equal");
    let (run, _) = compile_bundles(&dir, SAMPLE_BUNDLE_POLICY, Some(SAMPLE_POLICY));
    let stderr = text(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert_eq!(stderr, "");
    let metafields: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(metafields.as_array().unwrap().len(), 2);
}

#[test]
fn without_the_offers_policy_stderr_says_the_holdout_was_not_compared() {
    let dir = scratch("unchecked");
    let (run, _) = compile_bundles(&dir, SAMPLE_BUNDLE_POLICY, None);
    let stderr = text(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [
            "note: the bundle policy's holdout was not compared with the offers policy's; pass \
             --offers-policy FILE (the discount policy JSON) to check that both hold out the same \
             shoppers"
        ]
    );
    assert!(serde_json::from_slice::<serde_json::Value>(&run.stdout).is_ok());
}

#[test]
fn an_unreadable_offers_policy_gets_the_engines_reasons() {
    let dir = scratch("unreadable");
    let (run, _) = compile_bundles(&dir, SAMPLE_BUNDLE_POLICY, Some("{\"version\": 1,"));
    let stderr = text(&run.stderr);
    assert!(!run.status.success(), "{stderr}");
    assert_eq!(text(&run.stdout), "");
    assert!(
        stderr.contains(&format!(
            "reading {}: the policy does not compile; fix these first:",
            dir.join("policy.json").display()
        )) && stderr.contains("policy_malformed"),
        "{stderr}"
    );
}

/// The two policy files swapped: each command names the file and says which commands read it.
#[test]
fn a_swapped_policy_is_named_for_what_it_looks_like() {
    let dir = scratch("swapped");
    let (run, bundle_file) = compile_bundles(&dir, SAMPLE_POLICY, None);
    let stderr = text(&run.stderr);
    assert!(!run.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "compiling the bundle policy {} (it has `offers`: it looks like the discount's policy",
            bundle_file.display()
        )),
        "{stderr}"
    );

    let run = Command::new(env!("CARGO_BIN_EXE_marginwise"))
        .args(["--quiet", "compile-policy", "--policy"])
        .arg(&bundle_file)
        .output()
        .unwrap();
    std::fs::write(&bundle_file, SAMPLE_BUNDLE_POLICY).unwrap();
    let run_bundle = Command::new(env!("CARGO_BIN_EXE_marginwise"))
        .args(["--quiet", "compile-policy", "--policy"])
        .arg(&bundle_file)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run.stderr));
    let stderr = text(&run_bundle.stderr);
    assert!(!run_bundle.status.success(), "{stderr}");
    assert!(
        stderr.contains("(it has `discount`: it looks like the cart transform's bundle policy"),
        "{stderr}"
    );
}

/// Bundle definitions the cart transform would skip are the bundles file's problem: the error
/// names that file, not the (valid) bundle policy.
#[test]
fn refused_definitions_name_the_bundles_file() {
    let dir = scratch("definitions");
    let policy_file = dir.join("bundle-policy.json");
    std::fs::write(&policy_file, SAMPLE_BUNDLE_POLICY).unwrap();
    let bundles_file = dir.join("bundles.json");
    std::fs::write(
        &bundles_file,
        serde_json::json!({"bundles": [
            {"parent": 7, "components": [{"variant": 1}, {"variant": 2}]},
            {"parent": 7, "components": [{"variant": 1, "quantity": 2}]}
        ]})
        .to_string(),
    )
    .unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_marginwise"))
        .args(["--quiet", "compile-bundles", "--policy"])
        .arg(&policy_file)
        .arg("--bundles")
        .arg(&bundles_file)
        .output()
        .unwrap();
    let stderr = text(&run.stderr);
    assert!(!run.status.success(), "{stderr}");
    assert_eq!(text(&run.stdout), "");
    assert!(
        stderr.starts_with(&format!(
            "error: checking the bundles {}: the bundle definitions cannot be stored",
            bundles_file.display()
        )) && stderr.contains("bundles[1] (parent 7):")
            && !stderr.contains("bundle policy"),
        "{stderr}"
    );
}
