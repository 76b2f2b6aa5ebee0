//! Builds every Function with exactly the command in its `shopify.extension.toml` (run in the
//! extension's directory, as Shopify CLI does) and checks the module: it exports every target's
//! `export`, fits Shopify's 256 KB module limit, and fits our own 128 KB budget.
//!
//! The budget leaves room below Shopify's limit for the engine to grow; a Function that crosses it
//! should get smaller (or the budget should be raised on purpose, in this file, with a reason).
//! The build reuses the target directory cargo is using for this test run (`CARGO_TARGET_DIR`, else
//! `<workspace>/target`), so a warm cache makes it quick.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Shopify's module size limit, counted in decimal kilobytes (the stricter reading).
const SHOPIFY_LIMIT_BYTES: u64 = 256_000;
/// Our budget, same unit.
const BUDGET_BYTES: u64 = 128_000;

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .or_else(|| std::env::var_os("CARGO_BUILD_TARGET_DIR"))
        .map(PathBuf::from)
        .unwrap_or_else(|| common::workspace_root().join("target"))
}

/// Where the build command leaves the module. The toml names it relative to the extension,
/// assuming the default `<workspace>/target`; with another target directory the same relative
/// path lives under that directory instead.
fn artifact(function: &common::Function) -> PathBuf {
    let default_target = common::workspace_root().join("target");
    let declared = common::normalize(&function.dir.join(&function.build_path));
    match declared.strip_prefix(&default_target) {
        Ok(rest) => target_dir().join(rest),
        Err(_) => declared,
    }
}

fn leb128(bytes: &[u8], at: &mut usize) -> usize {
    let mut value = 0usize;
    let mut shift = 0;
    loop {
        let byte = bytes[*at];
        *at += 1;
        value |= usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return value;
        }
    }
}

/// The names of a module's function exports (export section, kind 0).
fn function_exports(module: &[u8]) -> Vec<String> {
    assert_eq!(module.get(..4), Some(&b"\0asm"[..]), "not a Wasm module");
    let mut names = Vec::new();
    let mut at = 8;
    while at < module.len() {
        let id = module[at];
        at += 1;
        let size = leb128(module, &mut at);
        let end = at + size;
        if id == 7 {
            let mut p = at;
            let count = leb128(module, &mut p);
            for _ in 0..count {
                let len = leb128(module, &mut p);
                let name = String::from_utf8(module[p..p + len].to_vec()).unwrap();
                p += len;
                let kind = module[p];
                p += 1;
                let _index = leb128(module, &mut p);
                if kind == 0 {
                    names.push(name);
                }
            }
        }
        at = end;
    }
    names
}

#[test]
fn functions_build_and_fit_the_size_limits() {
    let functions = common::functions();
    assert!(!functions.is_empty(), "no Function extensions found");
    let mut problems = Vec::new();
    for function in &functions {
        println!(
            "building {} in {}: {}",
            function.handle,
            function.dir.display(),
            function.build_command
        );
        let status = Command::new("sh")
            .arg("-c")
            .arg(&function.build_command)
            .current_dir(&function.dir)
            .env("CARGO_TARGET_DIR", target_dir())
            .status()
            .unwrap();
        assert!(status.success(), "{}: build failed", function.handle);

        let path = artifact(function);
        let module = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let size = u64::try_from(module.len()).unwrap();
        println!(
            "{}: {} bytes ({:.1} KB) at {}; Shopify limit {SHOPIFY_LIMIT_BYTES}, budget {BUDGET_BYTES}",
            function.handle,
            size,
            size as f64 / 1000.0,
            path.display()
        );
        if size > SHOPIFY_LIMIT_BYTES {
            problems.push(format!(
                "{}: {size} bytes, over Shopify's {SHOPIFY_LIMIT_BYTES}",
                function.handle
            ));
        }
        if size > BUDGET_BYTES {
            problems.push(format!(
                "{}: {size} bytes, over our budget of {BUDGET_BYTES}",
                function.handle
            ));
        }
        let exports = function_exports(&module);
        for targeting in &function.targeting {
            if !exports.contains(&targeting.export) {
                problems.push(format!(
                    "{}: module does not export `{}` ({})",
                    function.handle, targeting.export, targeting.target
                ));
            }
        }
        if Path::new(&path).file_stem().and_then(|s| s.to_str()) != Some(function.handle.as_str()) {
            problems.push(format!(
                "{}: module file {} is not named after the handle",
                function.handle,
                path.display()
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}
