//! What the conformance tests share: the workspace layout and each Function's
//! `shopify.extension.toml`, read the way Shopify CLI reads it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// One `[[extensions.targeting]]` entry.
pub struct Targeting {
    pub target: String,
    pub export: String,
    /// The input query, resolved against the extension's directory.
    pub input_query: PathBuf,
}

/// One Function extension as its `shopify.extension.toml` describes it.
pub struct Function {
    pub dir: PathBuf,
    pub handle: String,
    pub targeting: Vec<Targeting>,
    pub build_command: String,
    /// `[extensions.build] path` exactly as written, relative to `dir`.
    pub build_path: String,
}

fn string(table: &toml::Table, key: &str, file: &Path) -> String {
    table
        .get(key)
        .and_then(toml::Value::as_str)
        .unwrap_or_else(|| panic!("{}: `{key}` missing or not a string", file.display()))
        .to_string()
}

/// Every extension under `extensions/` whose `shopify.extension.toml` has `type = "function"`.
pub fn functions() -> Vec<Function> {
    let mut functions = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(workspace_root().join("extensions"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let file = dir.join("shopify.extension.toml");
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let config: toml::Table = text
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let extensions = config
            .get("extensions")
            .and_then(toml::Value::as_array)
            .unwrap_or_else(|| panic!("{}: no [[extensions]]", file.display()));
        for extension in extensions {
            let extension = extension.as_table().unwrap();
            if extension.get("type").and_then(toml::Value::as_str) != Some("function") {
                continue;
            }
            let targeting = extension
                .get("targeting")
                .and_then(toml::Value::as_array)
                .unwrap_or_else(|| panic!("{}: no [[extensions.targeting]]", file.display()))
                .iter()
                .map(|t| {
                    let t = t.as_table().unwrap();
                    Targeting {
                        target: string(t, "target", &file),
                        export: string(t, "export", &file),
                        input_query: normalize(&dir.join(string(t, "input_query", &file))),
                    }
                })
                .collect();
            let build = extension
                .get("build")
                .and_then(toml::Value::as_table)
                .unwrap_or_else(|| panic!("{}: no [extensions.build]", file.display()));
            functions.push(Function {
                dir: dir.clone(),
                handle: string(extension, "handle", &file),
                targeting,
                build_command: string(build, "command", &file),
                build_path: string(build, "path", &file),
            });
        }
    }
    functions
}

/// Resolves `..` without touching the file system (a build artifact may not exist yet).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
