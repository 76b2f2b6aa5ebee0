//! The settings page in the Shopify admin (`extensions/offers-settings`) checks a policy in
//! JavaScript before it saves it to the discount. These tests hold that checker to the engine's:
//! every policy one accepts, the other must accept, so the page neither saves a policy the
//! discount Function would skip offers of (or ignore), nor refuses one that works.
//!
//! They run the page's own modules with `node` (Node.js 20 or later) and its one npm package for
//! them (`@pacote/xxhash`, installed by `npm ci --prefix extensions/offers-settings`, which
//! `scripts/test.sh` runs first).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use marginwise_engine::Currency;
use model_pipeline::policy::{PolicyError, policy_metafields};
use model_pipeline::sync::install::discount_classes;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn node(args: &[&str]) -> String {
    let page = root().join("extensions/offers-settings");
    let output = Command::new("node")
        .args(args)
        .current_dir(&page)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `node` (Node.js 20 or later is needed for these tests): {e}")
        });
    assert!(
        output.status.success(),
        "node {args:?} failed in {} (its packages come from `npm ci --prefix \
         extensions/offers-settings`, which scripts/test.sh runs):\n{}",
        page.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("node printed UTF-8")
}

/// Thousands of edited policies (numbers at and past every bound, wrong types, unknown keys, ids,
/// messages with every kind of white space and control character, lone surrogates, too many
/// offers, 9,999 to 10,001 bytes, and hand-written texts with fractions, exponents and repeated
/// keys): the page's verdict and the pipeline's (`policy_metafields`, what `marginwise
/// compile-policy` and `discount` store) agree on every one, and where the engine names the
/// places it refuses, the page names the same ones.
#[test]
fn the_settings_page_accepts_exactly_the_policies_the_pipeline_stores() {
    let seeds = [
        "model-pipeline/sample/policy.json",
        "tests/fixtures/policies/apparel-usd.json",
        "tests/fixtures/policies/skincare-eur-best-for-shopper.json",
    ]
    .map(|path| root().join(path).display().to_string());
    let mut args = vec![
        "tests/policy-cases.mjs",
        "--count",
        "4000",
        "--seed",
        "20261121",
    ];
    args.extend(seeds.iter().map(String::as_str));
    let cases = node(&args);

    let (mut accepted, mut refused, mut stored_alike) = (0, 0, 0);
    let mut disagreements = Vec::new();
    for line in cases.lines() {
        let case: Value = serde_json::from_str(line).expect("a case is JSON");
        let text = case["text"].as_str().expect("text");
        let page_problems = case["problems"].as_array().expect("problems");
        let pipeline = policy_metafields(text);
        if page_problems.is_empty() {
            accepted += 1;
        } else {
            refused += 1;
        }
        let page_paths: BTreeSet<&str> = page_problems
            .iter()
            .map(|p| p["path"].as_str().expect("path"))
            .collect();
        // Where the engine names what it refuses, the page names the same places. (Not for a
        // hand-written text: the page reads it as JSON.parse does, the last copy of a repeated
        // key, so it may stop at another place than the engine, which reads the first.)
        let same = match &pipeline {
            Ok(_) => page_problems.is_empty(),
            Err(PolicyError::Reasons(reasons)) if !case["raw"].as_bool().expect("raw") => {
                let engine_paths: BTreeSet<&str> =
                    reasons.iter().map(|r| r.subject.as_str()).collect();
                engine_paths == page_paths
            }
            Err(_) => !page_problems.is_empty(),
        };
        // A policy the page saves, it stores as the pipeline does: the same JSON text, and the
        // same compiled form beside it.
        if let (Ok(metafields), Some(compiled)) = (&pipeline, case["compiled"].as_str()) {
            stored_alike += 1;
            // And it sets the discount classes `marginwise discount` would (`Reward::class`).
            let policy = marginwise_engine::policy::parse(text)
                .policy
                .expect("accepted");
            let classes: Vec<&str> = discount_classes(&policy)
                .into_iter()
                .map(|class| class.name())
                .collect();
            if case["classes"] != serde_json::json!(classes) {
                disagreements.push(format!(
                    "{text}\n  page classes: {}\n  pipeline classes: {classes:?}",
                    case["classes"]
                ));
            }
            if metafields[0]["value"] != text || metafields[1]["value"] != compiled {
                disagreements.push(format!(
                    "{text}\n  page stores: {compiled}\n  pipeline stores: {metafields}"
                ));
            }
        }
        if !same {
            disagreements.push(format!(
                "{text}\n  page: {page_problems:?}\n  pipeline: {}",
                pipeline
                    .err()
                    .map_or("stores it".to_string(), |e| e.to_string())
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} policies judged differently, e.g.:\n{}",
        disagreements.len(),
        accepted + refused,
        disagreements[..disagreements.len().min(5)].join("\n")
    );
    // Both verdicts are common, so agreement is not a matter of one side accepting everything.
    assert!(
        accepted > 500 && refused > 500,
        "accepted {accepted}, refused {refused}"
    );
    assert_eq!(
        stored_alike, accepted,
        "every accepted policy's compiled form compared"
    );
}

/// The page shows amounts in the policy currency's units (12.50, not 1250), so it must read a
/// currency's decimals as the Functions do, for every three-letter code.
#[test]
fn the_settings_page_reads_every_currency_with_the_engines_decimals() {
    let table = node(&[
        "--input-type=module",
        "-e",
        "import {EXPONENT_EXCEPTIONS} from './src/policy.js'; \
         console.log(JSON.stringify(EXPONENT_EXCEPTIONS));",
    ]);
    let table: BTreeMap<String, u8> = serde_json::from_str(&table).expect("a JSON table");
    let mut wrong = Vec::new();
    for a in b'A'..=b'Z' {
        for b in b'A'..=b'Z' {
            for c in b'A'..=b'Z' {
                let code = String::from_utf8(vec![a, b, c]).expect("ASCII");
                let engine = Currency::from_code(&code).expect("three capitals").exponent;
                let page = table.get(&code).copied().unwrap_or(2);
                if engine != page {
                    wrong.push(format!("{code}: engine {engine}, page {page}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "decimals differ: {wrong:?}");
}
