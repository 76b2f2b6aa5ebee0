//! `wasm-runner`: runs marginwise's Shopify Functions as wasm the way Shopify does, and measures
//! them against Shopify's limits.
//!
//! Native `cargo test` runs the Functions' Rust code but says nothing about the numbers that decide
//! whether a Function works in a real checkout: instructions, memory, input/output/log sizes and
//! module size. Shopify's own `function-runner` and trampoline are GitHub downloads, so this crate
//! rebuilds the same pipeline from crates.io parts:
//!
//! 1. each Function is built with the command in its `shopify.extension.toml` ([`project`]);
//! 2. its `shopify_function_v2` imports are rewired to a separately instantiated provider module,
//!    Shopify's `shopify_function_provider` 2.0.1 built by `tests/provider` ([`trampoline`]);
//! 3. wasmtime runs the export with fuel metered like Shopify's runner, input encoded as MessagePack
//!    like Shopify encodes it ([`host`], [`msgpack`]);
//! 4. every figure is reported next to the limit that applies to this input ([`limits`]).
//!
//! It deliberately does not judge what a Function decides: output equality is the fixtures' and
//! snapshots' job. It also does not reproduce Shopify's input-query cost or output-schema checks.

pub mod budget;
pub mod bundle_carts;
pub mod carts;
pub mod funcprof;
pub mod host;
pub mod limits;
pub mod msgpack;
pub mod project;
pub mod report;
pub mod trampoline;

use host::{FunctionModule, Host, HostError, RunReport};
use project::{Extension, Fixture, Project, ProjectError};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Any failure of the runner, naming what it was working on.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(transparent)]
    Project(#[from] ProjectError),
    #[error("{what}: {source}")]
    Host {
        what: String,
        #[source]
        source: HostError,
    },
}

/// A provider-linked host plus the checkout's Functions, each built and compiled once.
pub struct Runner {
    pub project: Project,
    host: Host,
    modules: Mutex<HashMap<String, Arc<FunctionModule>>>,
}

impl Runner {
    /// Builds (or loads) the provider and prepares the host.
    pub fn new(project: Project) -> Result<Self, RunnerError> {
        let provider = project.provider_wasm()?;
        let host = Host::new(&provider).map_err(|source| RunnerError::Host {
            what: "the Wasm API provider".to_owned(),
            source,
        })?;
        Ok(Self {
            project,
            host,
            modules: Mutex::new(HashMap::new()),
        })
    }

    /// The runner for the checkout at or above `start`.
    pub fn discover(start: &Path) -> Result<Self, RunnerError> {
        Self::new(Project::discover(start)?)
    }

    /// The Function serving `target`/`export`, built and compiled on first use.
    pub fn function_for(
        &self,
        target: &str,
        export: &str,
    ) -> Result<(Extension, Arc<FunctionModule>), RunnerError> {
        let extension = self.project.extension_for(target, export)?;
        let module = self.extension_module(&extension)?;
        Ok((extension, module))
    }

    /// The compiled module of `extension`, built on first use.
    pub fn extension_module(
        &self,
        extension: &Extension,
    ) -> Result<Arc<FunctionModule>, RunnerError> {
        let key = extension.toml_path.display().to_string();
        if let Some(module) = self.lock_modules().get(&key) {
            return Ok(Arc::clone(module));
        }
        let wasm = self.project.build_function(extension)?;
        let module = Arc::new(self.load_wasm(&wasm, &extension.handle)?);
        self.lock_modules().insert(key, Arc::clone(&module));
        Ok(module)
    }

    /// Compiles a Function module given as bytes; `what` names it in errors.
    pub fn load_wasm(&self, wasm: &[u8], what: &str) -> Result<FunctionModule, RunnerError> {
        self.host
            .load_function(wasm)
            .map_err(|source| RunnerError::Host {
                what: what.to_owned(),
                source,
            })
    }

    /// Loads a built module instrumented for a per-function profile (see [`funcprof`]).
    pub fn load_wasm_instrumented(
        &self,
        wasm: &[u8],
        what: &str,
    ) -> Result<FunctionModule, RunnerError> {
        self.host
            .load_instrumented(wasm)
            .map_err(|source| RunnerError::Host {
                what: what.to_owned(),
                source,
            })
    }

    /// Runs `export` of an already loaded module on `input`; `what` names the run in errors.
    pub fn run_module(
        &self,
        module: &FunctionModule,
        export: &str,
        input: &Value,
        what: &str,
    ) -> Result<RunReport, RunnerError> {
        self.host
            .run(module, export, input)
            .map_err(|source| RunnerError::Host {
                what: what.to_owned(),
                source,
            })
    }

    /// Like [`Runner::run_module`], also measuring the instructions spent in each provider export.
    pub fn run_module_profiled(
        &self,
        module: &FunctionModule,
        export: &str,
        input: &Value,
        what: &str,
    ) -> Result<RunReport, RunnerError> {
        self.host
            .run_profiled(module, export, input)
            .map_err(|source| RunnerError::Host {
                what: what.to_owned(),
                source,
            })
    }

    /// Replays a run-log fixture through the Function its target and export name.
    pub fn run_fixture(&self, fixture: &Fixture) -> Result<RunReport, RunnerError> {
        let (_, module) = self.function_for(&fixture.target, &fixture.export)?;
        self.run_module(
            &module,
            &fixture.export,
            &fixture.input,
            &fixture.path.display().to_string(),
        )
    }

    fn lock_modules(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<FunctionModule>>> {
        // A poisoned cache only means another thread panicked mid-insert; the map stays usable.
        self.modules
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
