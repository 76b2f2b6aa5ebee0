//! Invariants from ARCHITECTURE.md. Each test names the rule it guards.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Source lines that are not inside a `#[cfg(test)]` module, with comments dropped. Test modules sit
/// at the end of a file by convention, so everything after `#[cfg(test)]` is treated as test code.
fn production_lines(path: &Path) -> Vec<(usize, String)> {
    let text = fs::read_to_string(path).unwrap();
    let mut lines = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let code = line.split("//").next().unwrap_or("");
        lines.push((number + 1, code.to_string()));
    }
    lines
}

fn find_words(files: &[PathBuf], words: &[&str]) -> Vec<String> {
    let mut hits = Vec::new();
    for file in files {
        for (number, line) in production_lines(file) {
            for word in words {
                let found = line.match_indices(word).any(|(i, _)| {
                    let before = line[..i].chars().last();
                    let after = line[i + word.len()..].chars().next();
                    let ident =
                        |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
                    !ident(before) && !ident(after)
                });
                if found {
                    hits.push(format!(
                        "{}:{number}: `{word}` in `{}`",
                        file.display(),
                        line.trim()
                    ));
                }
            }
        }
    }
    hits
}

#[test]
fn engine_has_no_floating_point_money() {
    let files = rust_files(&workspace_root().join("engine/src"));
    assert!(!files.is_empty());
    let hits = find_words(&files, &["f32", "f64"]);
    assert!(
        hits.is_empty(),
        "floating point in the engine:\n{}",
        hits.join("\n")
    );
}

#[test]
fn engine_does_no_io_and_reads_no_clock_or_randomness() {
    let files = rust_files(&workspace_root().join("engine/src"));
    let hits = find_words(
        &files,
        &[
            "std::fs",
            "std::io",
            "std::net",
            "std::env",
            "std::time",
            "Instant",
            "SystemTime",
            "rand",
            "thread_rng",
        ],
    );
    assert!(
        hits.is_empty(),
        "IO, clock or randomness in the engine:\n{}",
        hits.join("\n")
    );
}

#[test]
fn engine_depends_on_nothing_shopify_or_heavy() {
    let manifest: toml::Table = fs::read_to_string(workspace_root().join("engine/Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let allowed = ["miniserde", "xxhash-rust", "itoa"];
    let deps = manifest
        .get("dependencies")
        .and_then(|d| d.as_table())
        .cloned()
        .unwrap_or_default();
    for name in deps.keys() {
        assert!(
            allowed.contains(&name.as_str()),
            "engine dependency `{name}` is not on the allow-list {allowed:?}: the engine runs inside \
             a <128 KB wasm Function and must not know Shopify's types"
        );
    }
}

/// Extensions translate; they must not do money arithmetic of their own.
#[test]
fn extensions_hold_no_floating_point_money() {
    let root = workspace_root().join("extensions");
    let files = rust_files(&root);
    let hits = find_words(&files, &["f32", "f64", "as_f64"]);
    assert!(
        hits.is_empty(),
        "floating point in an extension:\n{}",
        hits.join("\n")
    );
}

/// Handle = folder = package = wasm file name, so a wasm file, a log line or a fixture folder
/// always names the same extension.
#[test]
fn extension_handle_folder_and_package_agree() {
    let root = workspace_root().join("extensions");
    let Ok(entries) = fs::read_dir(&root) else {
        return;
    };
    let mut seen = 0;
    for entry in entries.flatten() {
        let dir = entry.path();
        if !dir.join("shopify.extension.toml").exists() {
            continue;
        }
        let folder = dir.file_name().unwrap().to_string_lossy().to_string();
        let ext: toml::Table = fs::read_to_string(dir.join("shopify.extension.toml"))
            .unwrap()
            .parse()
            .unwrap();
        let handle = ext["extensions"].as_array().unwrap()[0]["handle"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            handle,
            folder,
            "{}: handle differs from folder",
            dir.display()
        );
        if ext["extensions"].as_array().unwrap()[0]["type"].as_str() != Some("function") {
            continue;
        }
        seen += 1;
        let cargo: toml::Table = fs::read_to_string(dir.join("Cargo.toml"))
            .unwrap()
            .parse()
            .unwrap();
        let package = cargo["package"]["name"].as_str().unwrap().to_string();
        assert_eq!(
            package,
            folder,
            "{}: package differs from folder",
            dir.display()
        );
        let build = ext["extensions"].as_array().unwrap()[0]["build"]["path"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            build.ends_with(&format!("/{folder}.wasm")),
            "{}: wasm path {build}",
            dir.display()
        );
    }
    assert!(seen > 0, "no extension found under {}", root.display());
}

/// The discount Function names its settings page, and that page is a UI extension on the
/// discount details' function-settings target: without the link the admin shows the discount with
/// nothing to edit its policy with.
#[test]
fn the_offers_function_names_its_settings_page() {
    let root = workspace_root().join("extensions");
    let read = |folder: &str| -> toml::Table {
        fs::read_to_string(root.join(folder).join("shopify.extension.toml"))
            .unwrap()
            .parse()
            .unwrap()
    };
    let offers = read("offers");
    let page = offers["extensions"][0]["ui"]["handle"].as_str().unwrap();
    let settings = read(page);
    let extension = &settings["extensions"][0];
    assert_eq!(extension["handle"].as_str(), Some(page));
    assert_eq!(extension["type"].as_str(), Some("ui_extension"));
    assert_eq!(
        settings["api_version"].as_str(),
        offers["api_version"].as_str(),
        "the page and the Function speak one API version"
    );
    let target = &extension["targeting"][0];
    assert_eq!(
        target["target"].as_str(),
        Some("admin.discount-details.function-settings.render")
    );
    let module = target["module"].as_str().unwrap();
    assert!(
        root.join(page).join(module).exists(),
        "{page}: module {module} does not exist"
    );
}

/// The app configuration deploys as Shopify's CLI reads it today: no field the CLI dropped
/// (`include_config_on_deploy`, removed from the file with a notice on every deploy), the three
/// compliance topics subscribed at an absolute HTTPS address (the app URL is the placeholder home,
/// so a relative uri would resolve there) whose path is the one `marginwise webhooks` serves.
#[test]
fn the_app_configuration_subscribes_the_webhooks_marginwise_serves() {
    let root = workspace_root();
    let app: toml::Table = fs::read_to_string(root.join("shopify.app.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        app.get("build")
            .and_then(|b| b.get("include_config_on_deploy"))
            .is_none(),
        "include_config_on_deploy is no longer supported by Shopify CLI"
    );
    let subscriptions = app["webhooks"]["subscriptions"].as_array().unwrap();
    let compliance: Vec<_> = subscriptions
        .iter()
        .filter(|s| s.get("compliance_topics").is_some())
        .collect();
    assert_eq!(compliance.len(), 1, "one compliance subscription");
    let topics: Vec<&str> = compliance[0]["compliance_topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for topic in ["customers/data_request", "customers/redact", "shop/redact"] {
        assert!(topics.contains(&topic), "{topic} not subscribed");
    }
    let uri = compliance[0]["uri"].as_str().unwrap();
    let path = uri
        .strip_prefix("https://")
        .and_then(|rest| rest.find('/').map(|slash| &rest[slash..]))
        .unwrap_or_else(|| panic!("{uri}: not an absolute https address"));
    let served = fs::read_to_string(root.join("model-pipeline/src/privacy/mod.rs")).unwrap();
    assert!(
        served.contains(&format!("pub const COMPLIANCE_PATH: &str = \"{path}\";")),
        "shopify.app.toml sends the compliance topics to {path}, which `marginwise webhooks` does not serve"
    );
}

/// Every crate opens with a `//!` paragraph saying what it is for.
#[test]
fn every_crate_opens_with_a_purpose_paragraph() {
    let root = workspace_root();
    let manifest: toml::Table = fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let members = manifest["workspace"]["members"].as_array().unwrap();
    for member in members {
        let dir = root.join(member.as_str().unwrap());
        let entry = ["src/lib.rs", "src/main.rs"]
            .iter()
            .map(|p| dir.join(p))
            .find(|p| p.exists());
        let entry =
            entry.unwrap_or_else(|| panic!("{}: no src/lib.rs or src/main.rs", dir.display()));
        let text = fs::read_to_string(&entry).unwrap();
        assert!(
            text.trim_start().starts_with("//!"),
            "{} does not open with a `//!` paragraph",
            entry.display()
        );
    }
}

/// The discount's two policy metafields are declared with the types every writer uses (the
/// pipeline's `policy_metafields`, the settings page's `applyMetafieldChange`) and with merchant
/// write access, which the settings page writes with.
#[test]
fn the_discount_policy_metafields_are_declared_for_the_settings_page() {
    let root = workspace_root();
    let app: toml::Table = fs::read_to_string(root.join("shopify.app.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let page = fs::read_to_string(root.join("extensions/offers-settings/src/index.jsx")).unwrap();
    let pipeline = fs::read_to_string(root.join("model-pipeline/src/policy.rs")).unwrap();
    for (key, kind, page_key) in [
        ("policy", "json", "POLICY_KEY"),
        (
            "policy_compiled",
            "single_line_text_field",
            "COMPILED_POLICY_KEY",
        ),
    ] {
        let definition = &app["discount"]["metafields"]["app"][key];
        assert_eq!(definition["type"].as_str(), Some(kind), "{key}");
        assert_eq!(
            definition["access"]["admin"].as_str(),
            Some("merchant_read_write"),
            "{key}"
        );
        assert!(
            page.contains(&format!("key: {page_key},")) && page.contains(&format!("\"{kind}\"")),
            "the settings page writes {key} as {kind}"
        );
        assert!(
            pipeline.contains(&format!("\"type\": \"{kind}\"")),
            "the pipeline writes {key} as {kind}"
        );
    }
}

/// `marginwise auth` asks for the scopes the app declares (as does the local stand-in's grant;
/// the app may leave out `read_all_orders` until Shopify grants it, and `auth
/// --without-all-orders` then asks for the rest),
/// and every redirect URI it can be given is one the app lists: its default loopback address,
/// and the webhook proxy's host on the callback path `marginwise webhooks` serves.
#[test]
fn the_authorization_code_grant_asks_for_what_the_app_declares() {
    let root = workspace_root();
    let app: toml::Table = fs::read_to_string(root.join("shopify.app.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let declared = app["access_scopes"]["scopes"].as_str().unwrap();
    for (file, constant) in [
        ("model-pipeline/src/admin/oauth.rs", "APP_SCOPES"),
        ("tests/local-store/src/oauth.rs", "MARGINWISE_SCOPES"),
    ] {
        let text = fs::read_to_string(root.join(file)).unwrap();
        let opening = format!("pub const {constant}: &str = \"");
        let scopes = text
            .split(&opening)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("{file}: no {constant}"));
        let on_request: Vec<&str> = scopes
            .split(',')
            .filter(|scope| *scope != "read_all_orders")
            .collect();
        assert!(
            declared == scopes || declared == on_request.join(","),
            "{file}: {constant} ({scopes}) is not shopify.app.toml's scopes ({declared}), with or \
             without read_all_orders"
        );
        assert!(scopes.contains(",read_all_orders,"), "{file}: {constant}");
    }
    let redirects: Vec<&str> = app["auth"]["redirect_urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    let main = fs::read_to_string(root.join("model-pipeline/src/main.rs")).unwrap();
    let default = main
        .split("long, default_value = \"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap())
        .find(|value| value.ends_with("/auth/callback"))
        .expect("`auth --redirect-uri` has a default");
    assert!(
        redirects.contains(&default),
        "auth's default --redirect-uri {default} is not in [auth] redirect_urls"
    );
    let served = fs::read_to_string(root.join("model-pipeline/src/authorize.rs")).unwrap();
    let webhooks = app["webhooks"]["subscriptions"][0]["uri"].as_str().unwrap();
    let host = webhooks.split('/').take(3).collect::<Vec<_>>().join("/");
    for redirect in &redirects {
        let path = redirect.split('/').skip(3).collect::<Vec<_>>().join("/");
        assert!(
            served.contains(&format!("pub const CALLBACK_PATH: &str = \"/{path}\";")),
            "{redirect}: not the path marginwise serves"
        );
        assert!(
            redirect.starts_with("http://127.0.0.1:") || redirect.starts_with(&host),
            "{redirect}: neither loopback nor the webhook proxy's host {host}"
        );
    }
}
