//! Where the runner finds things in the marginwise checkout: extensions and their
//! `shopify.extension.toml`, the build of each Function, the provider module, and fixtures.
//!
//! A Function is built with exactly the command its `shopify.extension.toml` declares, run in the
//! extension's folder, as `shopify app build` does. The only change is `CARGO_TARGET_DIR`, pointed
//! at the runner's own build folder so the runner never waits on another build's lock; the
//! declared artifact `path` is followed from its `target` component onwards inside that folder.

use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Why the runner could not find, build or read something in the checkout.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error(
        "no marginwise checkout (a folder with Cargo.toml and extensions/) at or above {start}"
    )]
    NoRoot { start: PathBuf },
    #[error("reading {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}: not a valid shopify.extension.toml: {message}")]
    ExtensionToml { path: PathBuf, message: String },
    #[error("no extension under {root}/extensions targets `{target}` with export `{export}`")]
    NoExtension {
        root: PathBuf,
        target: String,
        export: String,
    },
    #[error("{path}: extension `{handle}` has no [extensions.build] command and path")]
    NoBuild { path: PathBuf, handle: String },
    #[error("{path}: build path `{build_path}` has no `target` folder to relocate")]
    BuildPath { path: PathBuf, build_path: String },
    #[error("building `{what}` with `{command}` in {dir} failed ({status}):\n{stderr}")]
    BuildFailed {
        what: String,
        command: String,
        dir: PathBuf,
        status: String,
        stderr: String,
    },
    #[error("{path}: {message}")]
    Fixture { path: PathBuf, message: String },
}

/// One `[[extensions]]` entry of a `shopify.extension.toml`, reduced to what the runner uses.
#[derive(Debug, Clone)]
pub struct Extension {
    pub handle: String,
    /// The folder holding `shopify.extension.toml`.
    pub dir: PathBuf,
    pub toml_path: PathBuf,
    pub targets: Vec<ExtensionTarget>,
    pub build_command: Option<String>,
    pub build_path: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ExtensionTarget {
    pub target: String,
    /// The Wasm export (Functions only; a UI extension's targets name a module instead).
    #[serde(default)]
    pub export: String,
    #[serde(default)]
    pub input_query: Option<String>,
}

#[derive(Deserialize)]
struct ExtensionFile {
    #[serde(default)]
    extensions: Vec<ExtensionEntry>,
}

#[derive(Deserialize)]
struct ExtensionEntry {
    handle: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    targeting: Vec<ExtensionTarget>,
    #[serde(default)]
    build: Option<BuildEntry>,
}

#[derive(Deserialize)]
struct BuildEntry {
    command: Option<String>,
    path: Option<String>,
}

/// The marginwise checkout the runner works in.
pub struct Project {
    pub root: PathBuf,
    /// Where the runner builds Functions and the provider.
    pub build_dir: PathBuf,
    built: Mutex<HashMap<PathBuf, Vec<u8>>>,
}

fn io_error(path: &Path, error: std::io::Error) -> ProjectError {
    ProjectError::Io {
        path: path.to_owned(),
        message: error.to_string(),
    }
}

impl Project {
    /// The checkout at or above `start`. The build folder is `MW_RUN_TARGET_DIR` if set, else
    /// `$CARGO_TARGET_DIR/mw-run`, else `<root>/target/mw-run`.
    pub fn discover(start: &Path) -> Result<Self, ProjectError> {
        let start = start.canonicalize().map_err(|e| io_error(start, e))?;
        let root = start
            .ancestors()
            .find(|dir| dir.join("Cargo.toml").is_file() && dir.join("extensions").is_dir())
            .ok_or_else(|| ProjectError::NoRoot {
                start: start.clone(),
            })?
            .to_owned();
        Ok(Self::at(root))
    }

    /// The checkout rooted exactly at `root`.
    pub fn at(root: PathBuf) -> Self {
        let build_dir = std::env::var_os("MW_RUN_TARGET_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("CARGO_TARGET_DIR").map(|dir| PathBuf::from(dir).join("mw-run"))
            })
            .unwrap_or_else(|| root.join("target").join("mw-run"));
        Self {
            root,
            build_dir,
            built: Mutex::new(HashMap::new()),
        }
    }

    /// Every Function declared under `extensions/*/shopify.extension.toml`, sorted by handle.
    pub fn extensions(&self) -> Result<Vec<Extension>, ProjectError> {
        let extensions_dir = self.root.join("extensions");
        let entries =
            std::fs::read_dir(&extensions_dir).map_err(|e| io_error(&extensions_dir, e))?;
        let mut found = Vec::new();
        for entry in entries {
            let dir = entry.map_err(|e| io_error(&extensions_dir, e))?.path();
            if dir.join("shopify.extension.toml").is_file() {
                found.extend(read_extension_toml(&dir)?);
            }
        }
        found.sort_by(|a, b| a.handle.cmp(&b.handle));
        Ok(found)
    }

    /// The one extension declared by `<dir>/shopify.extension.toml` (used for Functions that live
    /// outside `extensions/`, such as the read floors).
    pub fn extension_in(&self, dir: &Path) -> Result<Extension, ProjectError> {
        let toml_path = dir.join("shopify.extension.toml");
        let mut found = read_extension_toml(dir)?;
        match (found.pop(), found.is_empty()) {
            (Some(extension), true) => Ok(extension),
            _ => Err(ProjectError::ExtensionToml {
                path: toml_path,
                message: "expected exactly one [[extensions]] entry".to_owned(),
            }),
        }
    }

    /// The extension whose targeting has this target and export.
    pub fn extension_for(&self, target: &str, export: &str) -> Result<Extension, ProjectError> {
        self.extensions()?
            .into_iter()
            .find(|extension| {
                extension
                    .targets
                    .iter()
                    .any(|t| t.target == target && t.export == export)
            })
            .ok_or_else(|| ProjectError::NoExtension {
                root: self.root.clone(),
                target: target.to_owned(),
                export: export.to_owned(),
            })
    }

    /// Builds the extension's Function with its declared command and returns the module bytes.
    /// Each extension is built once per process.
    pub fn build_function(&self, extension: &Extension) -> Result<Vec<u8>, ProjectError> {
        let (Some(command), Some(build_path)) = (&extension.build_command, &extension.build_path)
        else {
            return Err(ProjectError::NoBuild {
                path: extension.toml_path.clone(),
                handle: extension.handle.clone(),
            });
        };
        let functions_dir = self.build_dir.join("functions");
        let artifact = relocate_build_path(build_path, &functions_dir).ok_or_else(|| {
            ProjectError::BuildPath {
                path: extension.toml_path.clone(),
                build_path: build_path.clone(),
            }
        })?;
        self.build_once(
            &artifact,
            &extension.handle,
            command,
            &extension.dir,
            &functions_dir,
        )
    }

    /// The provider module: `MW_PROVIDER_WASM` if set, else built from `tests/provider`.
    pub fn provider_wasm(&self) -> Result<Vec<u8>, ProjectError> {
        if let Some(prebuilt) = std::env::var_os("MW_PROVIDER_WASM") {
            let path = PathBuf::from(prebuilt);
            return std::fs::read(&path).map_err(|e| io_error(&path, e));
        }
        let provider_dir = self.root.join("tests").join("provider");
        let target_dir = self.build_dir.join("provider");
        let artifact = target_dir
            .join("wasm32-unknown-unknown")
            .join("release")
            .join("mw_wasm_api_provider.wasm");
        self.build_once(
            &artifact,
            "the Wasm API provider",
            "cargo build --target wasm32-unknown-unknown --release --locked",
            &provider_dir,
            &target_dir,
        )
    }

    fn build_once(
        &self,
        artifact: &Path,
        what: &str,
        command: &str,
        dir: &Path,
        target_dir: &Path,
    ) -> Result<Vec<u8>, ProjectError> {
        let mut built = self
            .built
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(bytes) = built.get(artifact) {
            return Ok(bytes.clone());
        }
        let output = Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", target_dir)
            .output()
            .map_err(|e| io_error(dir, e))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
            return Err(ProjectError::BuildFailed {
                what: what.to_owned(),
                command: command.to_owned(),
                dir: dir.to_owned(),
                status: output.status.to_string(),
                stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            });
        }
        let bytes = std::fs::read(artifact).map_err(|e| io_error(artifact, e))?;
        built.insert(artifact.to_owned(), bytes.clone());
        Ok(bytes)
    }
}

/// The `[[extensions]]` entries of `<dir>/shopify.extension.toml`.
fn read_extension_toml(dir: &Path) -> Result<Vec<Extension>, ProjectError> {
    let toml_path = dir.join("shopify.extension.toml");
    let text = std::fs::read_to_string(&toml_path).map_err(|e| io_error(&toml_path, e))?;
    let file: ExtensionFile = toml::from_str(&text).map_err(|e| ProjectError::ExtensionToml {
        path: toml_path.clone(),
        message: e.to_string(),
    })?;
    // Only Functions run here; the settings page (a UI extension) has nothing to build or run.
    Ok(file
        .extensions
        .into_iter()
        .filter(|entry| entry.kind == "function")
        .map(|entry| Extension {
            handle: entry.handle,
            dir: dir.to_owned(),
            toml_path: toml_path.clone(),
            targets: entry.targeting,
            build_command: entry.build.as_ref().and_then(|b| b.command.clone()),
            build_path: entry.build.and_then(|b| b.path),
        })
        .collect())
}

/// `../../target/wasm32-unknown-unknown/wasm/offers.wasm` inside `target_dir`: the part after the
/// last `target` component. `None` when the path has no such component.
pub fn relocate_build_path(build_path: &str, target_dir: &Path) -> Option<PathBuf> {
    let components: Vec<Component<'_>> = Path::new(build_path).components().collect();
    let last_target = components.iter().rposition(|c| c.as_os_str() == "target")?;
    let rest = components.get(last_target.checked_add(1)?..)?;
    if rest.is_empty() {
        return None;
    }
    let mut path = target_dir.to_owned();
    path.extend(rest);
    Some(path)
}

/// A Function run in Shopify's run-log payload shape:
/// `{"payload": {"export", "target", "input", "output"}}`.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub path: PathBuf,
    pub export: String,
    pub target: String,
    pub input: Value,
    /// The recorded output; a fixture may leave it out (or null) to record a run first.
    pub output: Option<Value>,
}

impl Fixture {
    pub fn load(path: &Path) -> Result<Self, ProjectError> {
        let text = std::fs::read_to_string(path).map_err(|e| io_error(path, e))?;
        let document: Value = serde_json::from_str(&text).map_err(|e| ProjectError::Fixture {
            path: path.to_owned(),
            message: format!("not valid JSON: {e}"),
        })?;
        Self::from_log_entry(path, &document)
    }

    /// Reads the payload of one run-log entry (`{"payload": {...}, ...}`); other keys of the entry
    /// (shop, timestamps, ...) are ignored.
    pub fn from_log_entry(path: &Path, document: &Value) -> Result<Self, ProjectError> {
        let fail = |message: String| ProjectError::Fixture {
            path: path.to_owned(),
            message,
        };
        let payload = document
            .get("payload")
            .and_then(Value::as_object)
            .ok_or_else(|| fail("no `payload` object at the top level".to_owned()))?;
        let text_field = |name: &str| {
            payload
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| fail(format!("`payload.{name}` is missing or not a string")))
        };
        let export = text_field("export")?;
        let target = text_field("target")?;
        let input = payload
            .get("input")
            .cloned()
            .ok_or_else(|| fail("`payload.input` is missing".to_owned()))?;
        // `shopify app logs` shows the input as a JSON string in some versions: accept both.
        let input = match input {
            Value::String(text) => serde_json::from_str(&text)
                .map_err(|e| fail(format!("`payload.input` is a string but not JSON: {e}")))?,
            Value::Object(_) => input,
            _ => return Err(fail("`payload.input` is not an object".to_owned())),
        };
        let output = match payload.get("output").cloned() {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(
                serde_json::from_str(&text)
                    .map_err(|e| fail(format!("`payload.output` is a string but not JSON: {e}")))?,
            ),
            Some(other) => Some(other),
        };
        Ok(Self {
            path: path.to_owned(),
            export,
            target,
            input,
            output,
        })
    }

    /// The fixture document as written to disk (pretty JSON, key order kept).
    pub fn to_document(&self) -> Value {
        let mut payload = serde_json::Map::new();
        payload.insert("export".to_owned(), Value::String(self.export.clone()));
        payload.insert("target".to_owned(), Value::String(self.target.clone()));
        payload.insert("input".to_owned(), self.input.clone());
        payload.insert(
            "output".to_owned(),
            self.output.clone().unwrap_or(Value::Null),
        );
        let mut document = serde_json::Map::new();
        document.insert("payload".to_owned(), Value::Object(payload));
        Value::Object(document)
    }
}

/// Every `*.json` fixture in `tests/fixtures/<handle>/` for each extension handle, sorted by path.
/// Other folders under `tests/fixtures` (e.g. policy documents) are not Function runs.
pub fn fixture_paths(project: &Project) -> Result<Vec<PathBuf>, ProjectError> {
    let fixtures_dir = project.root.join("tests").join("fixtures");
    let mut paths = Vec::new();
    for extension in project.extensions()? {
        let handle_dir = fixtures_dir.join(&extension.handle);
        let Ok(files) = std::fs::read_dir(&handle_dir) else {
            continue;
        };
        for file in files {
            let path = file.map_err(|e| io_error(&handle_dir, e))?.path();
            if path.extension().is_some_and(|ext| ext == "json") {
                paths.push(path);
            }
        }
    }
    paths.sort();
    Ok(paths)
}

/// What a Function's native test recorded for one fixture: the rendered output and the log line.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeSnapshot {
    pub path: PathBuf,
    pub output: Value,
    pub log: Option<String>,
}

/// The native insta snapshot of `fixture_path` in `extensions/<handle>/src/snapshots/`: the one
/// whose `input_file:` header names the fixture. The Functions' snapshot bodies hold a `log: ...`
/// line and, after a `--- output` line, the output as pretty JSON. `None` when no snapshot names
/// the fixture.
pub fn native_snapshot(
    project: &Project,
    handle: &str,
    fixture_path: &Path,
) -> Result<Option<NativeSnapshot>, ProjectError> {
    let snapshots_dir = project
        .root
        .join("extensions")
        .join(handle)
        .join("src")
        .join("snapshots");
    let Ok(relative) = fixture_path.strip_prefix(&project.root) else {
        return Ok(None);
    };
    let header = format!("input_file: {}", relative.display());
    let Ok(entries) = std::fs::read_dir(&snapshots_dir) else {
        return Ok(None);
    };
    let mut candidates: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| io_error(&snapshots_dir, e))?.path();
        if path.extension().is_some_and(|ext| ext == "snap") {
            candidates.push(path);
        }
    }
    candidates.sort();
    for path in candidates {
        let text = std::fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
        if !text.lines().any(|line| line == header) {
            continue;
        }
        let fail = |message: &str| ProjectError::Fixture {
            path: path.clone(),
            message: message.to_owned(),
        };
        let (_, output_text) = text
            .split_once("\n--- output\n")
            .ok_or_else(|| fail("no `--- output` section"))?;
        let output = serde_json::from_str(output_text.trim())
            .map_err(|e| fail(&format!("the `--- output` section is not JSON: {e}")))?;
        let log = text
            .lines()
            .find_map(|line| line.strip_prefix("log: "))
            .map(str::to_owned);
        return Ok(Some(NativeSnapshot { path, output, log }));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn build_paths_are_relocated_after_the_last_target_folder() {
        let dir = Path::new("/build");
        let cases = [
            (
                "target/wasm32-unknown-unknown/release/offers.wasm",
                Some("/build/wasm32-unknown-unknown/release/offers.wasm"),
            ),
            (
                "../../target/wasm32-unknown-unknown/wasm/offers.wasm",
                Some("/build/wasm32-unknown-unknown/wasm/offers.wasm"),
            ),
            ("dist/offers.wasm", None),
            ("target", None),
        ];
        for (input, expected) in cases {
            assert_eq!(
                relocate_build_path(input, dir),
                expected.map(PathBuf::from),
                "{input}"
            );
        }
    }

    #[test]
    fn payload_errors_name_the_file_and_field() {
        let path = Path::new("fixture.json");
        let cases = [
            (
                r#"{}"#,
                "fixture.json: no `payload` object at the top level",
            ),
            (
                r#"{"payload":{"target":"t","input":{}}}"#,
                "fixture.json: `payload.export` is missing or not a string",
            ),
            (
                r#"{"payload":{"export":"e","target":"t"}}"#,
                "fixture.json: `payload.input` is missing",
            ),
            (
                r#"{"payload":{"export":"e","target":"t","input":"{nope"}}"#,
                "fixture.json: `payload.input` is a string but not JSON: key must be a string at line 1 column 2",
            ),
        ];
        for (text, expected) in cases {
            let document: Value = serde_json::from_str(text).unwrap();
            let error = Fixture::from_log_entry(path, &document).unwrap_err();
            assert_eq!(error.to_string(), expected);
        }
    }

    #[test]
    fn string_payloads_from_app_logs_are_parsed() {
        let document: Value = serde_json::from_str(
            r#"{"shop_id":1,"payload":{"export":"e","target":"t","input":"{\"b\":1,\"a\":2}","output":"{\"ok\":true}"}}"#,
        )
        .unwrap();
        let fixture = Fixture::from_log_entry(Path::new("x"), &document).unwrap();
        assert_eq!(
            serde_json::to_string(&fixture.input).unwrap(),
            r#"{"b":1,"a":2}"#
        );
        assert_eq!(fixture.output, Some(serde_json::json!({"ok": true})));
    }
}
