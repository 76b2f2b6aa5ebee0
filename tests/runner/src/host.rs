//! The wasmtime host: links the provider under `shopify_function_v2`, feeds the input through
//! `initialize`, calls the export with fuel metering and reads the result through `finalize`.
//!
//! Fuel is configured to count what Shopify's function-runner counts: 1 per operator, 0 for
//! `nop`, `drop`, `block`, `loop`, `end`, `else`, `return` and `unreachable` (wasmtime's flat
//! defaults), and no per-byte charge for bulk memory operations (wasmtime 48 adds one by default,
//! which would make every provider `memory.copy` cost its length). Only the export call is counted:
//! `initialize` and `finalize` are the host's protocol, not the Function's work.

use crate::limits::{LimitExceeded, LimitKind, Limits};
use crate::msgpack;
use crate::trampoline::{self, PROVIDER_MODULE};
use serde_json::Value;
use std::collections::BTreeMap;
use wasmtime::{
    Config, Engine, Instance, Linker, Memory, Module, OperatorCost, ResourceLimiter, Store, Trap,
    VariableOperatorCost,
};

/// Why a run could not produce a report.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("could not set up wasmtime: {0}")]
    Engine(String),
    #[error("provider module: {0}")]
    Provider(String),
    #[error(transparent)]
    Trampoline(#[from] trampoline::TrampolineError),
    #[error("function module does not compile: {0}")]
    Compile(String),
    #[error("function module does not instantiate against the provider: {0}")]
    Instantiate(String),
    #[error("function module has no export `{export}` of type () -> ()")]
    MissingExport { export: String },
    #[error("function trapped in `{export}` after {instructions} instructions: {message}{}", logs_suffix(.logs))]
    Trap {
        export: String,
        instructions: u64,
        message: String,
        logs: String,
    },
    #[error("function ran out of fuel: stopped after {stopped_at} instructions (the hard stop)")]
    HardStop { stopped_at: u64 },
    #[error("provider protocol: {0}")]
    Protocol(String),
    #[error("function output is not valid messagepack: {0}")]
    Output(#[from] msgpack::MsgpackError),
}

fn logs_suffix(logs: &str) -> String {
    if logs.is_empty() {
        String::new()
    } else {
        format!("; logs: {logs}")
    }
}

/// Fuel given to one export call. Far above the largest scaled limit (110 M) so that an over-limit
/// run is still measured exactly, yet finite so a runaway loop ends.
pub const HARD_STOP_FUEL: u64 = 2_000_000_000;

/// A compiled engine plus the compiled provider, reused across runs.
pub struct Host {
    engine: Engine,
    provider: Module,
}

/// A Function ready to run: the trampolined module and the size of the module Shopify would store.
pub struct FunctionModule {
    module: Module,
    /// Size in bytes of the module as built, before the trampoline rewrite.
    pub module_bytes: u64,
    /// Function names, when the module was instrumented by [`crate::funcprof`].
    function_names: Option<Vec<String>>,
}

/// What one run measured. Sizes are bytes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    pub export: String,
    pub n_lines: u64,
    pub output: Value,
    pub instructions: u64,
    /// The largest linear memory size requested by either memory (Function or provider).
    pub memory_bytes: u64,
    /// The input as compact JSON.
    pub input_bytes: u64,
    /// The output as compact JSON.
    pub output_bytes: u64,
    /// The input as the MessagePack the provider reads.
    pub input_msgpack_bytes: u64,
    pub log_bytes: u64,
    pub logs: String,
    pub module_bytes: u64,
    pub limits: Limits,
    /// Where the instructions went, when the run was profiled: calls and instructions spent inside
    /// each provider export (the rest is the Function's own code, trampoline shims included).
    pub provider_profile: Option<Vec<ProviderCalls>>,
    /// Per function of the Function module, when it was instrumented (see [`Host::load_instrumented`]).
    pub function_profile: Option<Vec<FunctionCalls>>,
}

/// One function of an instrumented Function module: calls, own and inclusive instructions (the
/// provider's instructions are booked to the function that called the provider).
#[derive(Debug, Clone, serde::Serialize)]
pub struct FunctionCalls {
    pub name: String,
    pub calls: u64,
    pub self_instructions: u64,
    pub inclusive_instructions: u64,
}

/// Calls to one provider export during a profiled run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProviderCalls {
    pub export: String,
    pub calls: u64,
    pub instructions: u64,
}

impl RunReport {
    /// Every limit this run went over, in a fixed order.
    pub fn exceeded(&self) -> Vec<LimitExceeded> {
        let checks = [
            (
                LimitKind::Instructions,
                self.instructions,
                self.limits.instructions,
            ),
            (
                LimitKind::InputSize,
                self.input_bytes,
                self.limits.input_bytes,
            ),
            (
                LimitKind::OutputSize,
                self.output_bytes,
                self.limits.output_bytes,
            ),
            (LimitKind::Logs, self.log_bytes, self.limits.log_bytes),
            (
                LimitKind::ModuleSize,
                self.module_bytes,
                self.limits.module_bytes,
            ),
            (
                LimitKind::Memory,
                self.memory_bytes,
                self.limits.memory_bytes,
            ),
        ];
        checks
            .into_iter()
            .filter(|(_, measured, allowed)| measured > allowed)
            .map(|(limit, measured, allowed)| LimitExceeded {
                limit,
                measured,
                allowed,
            })
            .collect()
    }

    /// `Err` with one line per exceeded limit, for callers that treat any excess as a failure.
    pub fn check_limits(&self) -> Result<(), String> {
        let exceeded = self.exceeded();
        if exceeded.is_empty() {
            return Ok(());
        }
        Err(exceeded
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "))
    }
}

/// Records the largest memory size any memory asked for, and allows everything: limits are
/// checked after the run so the report shows the real figure.
#[derive(Default)]
struct PeakMemory {
    peak_bytes: usize,
    /// Per provider export: (calls, instructions spent inside), when the run is profiled.
    provider_calls: BTreeMap<String, (u64, u64)>,
    /// Function-level profile of an instrumented module.
    frames: crate::funcprof::Frames,
}

impl ResourceLimiter for PeakMemory {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.peak_bytes = self.peak_bytes.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// The fuel table that matches Shopify's function-runner (see the module docs).
fn shopify_operator_cost() -> OperatorCost {
    let mut cost = OperatorCost::new();
    cost.variable = VariableOperatorCost {
        memory_copy_per_byte: 0,
        memory_fill_per_byte: 0,
        memory_init_per_byte: 0,
        memory_grow_per_page: 0,
        table_copy_per_element: 0,
        table_fill_per_element: 0,
        table_init_per_element: 0,
        table_grow_per_element: 0,
        array_copy_per_element: 0,
        array_fill_per_element: 0,
        array_new_data_per_element: 0,
        array_init_data_per_element: 0,
        array_new_elem_per_element: 0,
        array_init_elem_per_element: 0,
        array_new_default_per_element: 0,
        array_new_per_element: 0,
    };
    cost
}

fn read_u32(memory: &Memory, store: &Store<PeakMemory>, at: usize) -> Result<u32, HostError> {
    let mut word = [0_u8; 4];
    memory
        .read(store, at, &mut word)
        .map_err(|e| HostError::Protocol(format!("reading 4 bytes at {at}: {e}")))?;
    Ok(u32::from_le_bytes(word))
}

fn read_bytes(
    memory: &Memory,
    store: &Store<PeakMemory>,
    at: u32,
    len: u32,
    what: &str,
) -> Result<Vec<u8>, HostError> {
    let mut bytes = vec![0_u8; len as usize];
    memory
        .read(store, at as usize, &mut bytes)
        .map_err(|e| HostError::Protocol(format!("reading {what} ({len} bytes at {at}): {e}")))?;
    Ok(bytes)
}

/// Number of entries in `input.cart.lines`, the field `@scaleLimits` scales on; 0 when absent.
pub fn cart_line_count(input: &Value) -> u64 {
    input
        .get("cart")
        .and_then(|cart| cart.get("lines"))
        .and_then(Value::as_array)
        .map_or(0, |lines| lines.len() as u64)
}

impl Host {
    /// Compiles the provider module (`shopify_function_provider` built as a cdylib).
    pub fn new(provider_wasm: &[u8]) -> Result<Self, HostError> {
        let mut config = Config::new();
        config
            .wasm_multi_memory(true)
            .wasm_bulk_memory(true)
            .consume_fuel(true)
            .operator_cost(shopify_operator_cost());
        let engine = Engine::new(&config).map_err(|e| HostError::Engine(format!("{e:#}")))?;
        let provider = Module::new(&engine, provider_wasm)
            .map_err(|e| HostError::Provider(format!("does not compile: {e:#}")))?;
        for export in ["initialize", "finalize", "memory"] {
            if provider.get_export(export).is_none() {
                return Err(HostError::Provider(format!("has no export `{export}`")));
            }
        }
        Ok(Self { engine, provider })
    }

    /// Applies the trampoline and compiles a Function module as built (`.wasm` bytes).
    pub fn load_function(&self, function_wasm: &[u8]) -> Result<FunctionModule, HostError> {
        let rewritten = trampoline::apply(function_wasm)?;
        let module = Module::new(&self.engine, &rewritten)
            .map_err(|e| HostError::Compile(format!("{e:#}")))?;
        Ok(FunctionModule {
            module,
            module_bytes: function_wasm.len() as u64,
            function_names: None,
        })
    }

    /// Like [`Host::load_function`], and also instruments every function of the module so that a
    /// profiled run reports instructions per function (see [`crate::funcprof`]).
    pub fn load_instrumented(&self, function_wasm: &[u8]) -> Result<FunctionModule, HostError> {
        let rewritten = trampoline::apply(function_wasm)?;
        let (instrumented, names) =
            crate::funcprof::instrument(&rewritten).map_err(HostError::Compile)?;
        let module = Module::new(&self.engine, &instrumented)
            .map_err(|e| HostError::Compile(format!("{e:#}")))?;
        Ok(FunctionModule {
            module,
            module_bytes: function_wasm.len() as u64,
            function_names: Some(names),
        })
    }

    /// Runs `export` of `function` on `input` (the input query result as JSON).
    pub fn run(
        &self,
        function: &FunctionModule,
        export: &str,
        input: &Value,
    ) -> Result<RunReport, HostError> {
        self.run_with(function, export, input, false)
    }

    /// Like [`Host::run`], and also measures the instructions spent inside each provider export.
    ///
    /// The provider's functions are linked through host functions that read the fuel before and
    /// after forwarding each call. A host call costs no fuel and the Function's `call` costs 1 either
    /// way, so the total equals an unprofiled run's.
    pub fn run_profiled(
        &self,
        function: &FunctionModule,
        export: &str,
        input: &Value,
    ) -> Result<RunReport, HostError> {
        self.run_with(function, export, input, true)
    }

    fn run_with(
        &self,
        function: &FunctionModule,
        export: &str,
        input: &Value,
        profile: bool,
    ) -> Result<RunReport, HostError> {
        let instantiate = |e: wasmtime::Error| HostError::Instantiate(format!("{e:#}"));
        let mut store = Store::new(&self.engine, PeakMemory::default());
        store.limiter(|peak| peak);
        // Instantiation runs no Function code (no start functions), but fuel must be present.
        store
            .set_fuel(HARD_STOP_FUEL)
            .map_err(|e| HostError::Engine(format!("{e:#}")))?;

        let mut linker = Linker::new(&self.engine);
        let provider: Instance = linker
            .instantiate(&mut store, &self.provider)
            .map_err(|e| HostError::Provider(format!("does not instantiate: {e:#}")))?;
        if function.function_names.is_some() {
            link_frame_hooks(&mut linker).map_err(instantiate)?;
        }
        if profile {
            link_profiled(&mut linker, &mut store, provider).map_err(instantiate)?;
        } else {
            linker
                .instance(&mut store, PROVIDER_MODULE, provider)
                .map_err(instantiate)?;
        }
        let instance = linker
            .instantiate(&mut store, &function.module)
            .map_err(instantiate)?;

        let provider_memory = provider
            .get_memory(&mut store, "memory")
            .ok_or_else(|| HostError::Provider("has no memory export".to_owned()))?;
        let initialize = provider
            .get_typed_func::<u32, u32>(&mut store, "initialize")
            .map_err(|e| HostError::Provider(format!("`initialize`: {e:#}")))?;
        let finalize = provider
            .get_typed_func::<(), u32>(&mut store, "finalize")
            .map_err(|e| HostError::Provider(format!("`finalize`: {e:#}")))?;
        let entry = instance
            .get_typed_func::<(), ()>(&mut store, export)
            .map_err(|_| HostError::MissingExport {
                export: export.to_owned(),
            })?;

        let input_msgpack = msgpack::encode_json(input);
        let input_len = u32::try_from(input_msgpack.len())
            .map_err(|_| HostError::Protocol("input larger than 4 GiB".to_owned()))?;
        let input_at = initialize
            .call(&mut store, input_len)
            .map_err(|e| HostError::Protocol(format!("`initialize` failed: {e:#}")))?;
        provider_memory
            .write(&mut store, input_at as usize, &input_msgpack)
            .map_err(|e| HostError::Protocol(format!("writing the input: {e}")))?;

        store
            .set_fuel(HARD_STOP_FUEL)
            .map_err(|e| HostError::Engine(format!("{e:#}")))?;
        store.data_mut().frames.start(HARD_STOP_FUEL);
        let outcome = entry.call(&mut store, ());
        let remaining = store.get_fuel().unwrap_or(0);
        let instructions = HARD_STOP_FUEL.saturating_sub(remaining);

        // Logs are read even when the call trapped: a panic message is the most useful part.
        let (output_msgpack, logs) = read_finalize(&mut store, &finalize, &provider_memory)?;
        if let Err(error) = outcome {
            if error.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) {
                return Err(HostError::HardStop {
                    stopped_at: instructions,
                });
            }
            return Err(HostError::Trap {
                export: export.to_owned(),
                instructions,
                message: format!("{error:#}"),
                logs: String::from_utf8_lossy(&logs).into_owned(),
            });
        }

        let output = msgpack::decode_to_json(&output_msgpack)?;
        let n_lines = cart_line_count(input);
        Ok(RunReport {
            export: export.to_owned(),
            n_lines,
            input_bytes: json_len(input),
            output_bytes: json_len(&output),
            output,
            instructions,
            memory_bytes: store.data().peak_bytes as u64,
            input_msgpack_bytes: input_msgpack.len() as u64,
            log_bytes: logs.len() as u64,
            logs: String::from_utf8_lossy(&logs).into_owned(),
            module_bytes: function.module_bytes,
            limits: Limits::for_cart_lines(n_lines),
            provider_profile: profile.then(|| {
                store
                    .data()
                    .provider_calls
                    .iter()
                    .map(|(export, (calls, instructions))| ProviderCalls {
                        export: export.clone(),
                        calls: *calls,
                        instructions: *instructions,
                    })
                    .collect()
            }),
            function_profile: function.function_names.as_ref().map(|names| {
                store
                    .data()
                    .frames
                    .totals
                    .iter()
                    .map(|(&id, &(calls, own, inclusive))| FunctionCalls {
                        name: names
                            .get(id as usize)
                            .cloned()
                            .unwrap_or_else(|| format!("#{id}")),
                        calls,
                        self_instructions: own,
                        inclusive_instructions: inclusive,
                    })
                    .collect()
            }),
        })
    }
}

/// The two hooks an instrumented module calls around every function.
fn link_frame_hooks(linker: &mut Linker<PeakMemory>) -> wasmtime::Result<()> {
    use crate::funcprof::HOOK_MODULE;
    linker.func_wrap(
        HOOK_MODULE,
        "enter",
        |mut caller: wasmtime::Caller<'_, PeakMemory>, id: i32| -> wasmtime::Result<()> {
            let fuel = caller.get_fuel()?;
            caller.data_mut().frames.enter(id.cast_unsigned(), fuel);
            Ok(())
        },
    )?;
    linker.func_wrap(
        HOOK_MODULE,
        "exit",
        |mut caller: wasmtime::Caller<'_, PeakMemory>, id: i32| -> wasmtime::Result<()> {
            let fuel = caller.get_fuel()?;
            caller.data_mut().frames.exit(id.cast_unsigned(), fuel);
            Ok(())
        },
    )?;
    Ok(())
}

/// Links every provider export under [`PROVIDER_MODULE`]: memories directly, functions through a
/// host function that forwards the call and books the fuel it used to the export's name.
fn link_profiled(
    linker: &mut Linker<PeakMemory>,
    store: &mut Store<PeakMemory>,
    provider: Instance,
) -> wasmtime::Result<()> {
    let exports: Vec<(String, wasmtime::Extern)> = provider
        .exports(&mut *store)
        .map(|export| (export.name().to_owned(), export.into_extern()))
        .collect();
    for (name, item) in exports {
        match item {
            wasmtime::Extern::Func(target) => {
                let ty = target.ty(&*store);
                let booked_name = name.clone();
                linker.func_new(
                    PROVIDER_MODULE,
                    &name,
                    ty,
                    move |mut caller, params, results| {
                        let before = caller.get_fuel()?;
                        target.call(&mut caller, params, results)?;
                        let used = before.saturating_sub(caller.get_fuel()?);
                        let entry = caller
                            .data_mut()
                            .provider_calls
                            .entry(booked_name.clone())
                            .or_default();
                        entry.0 = entry.0.saturating_add(1);
                        entry.1 = entry.1.saturating_add(used);
                        Ok(())
                    },
                )?;
            }
            other => {
                linker.define(&mut *store, PROVIDER_MODULE, &name, other)?;
            }
        }
    }
    Ok(())
}

/// Calls `finalize` and reads (output, logs) from the six words it points at: output pointer and
/// length, then two (pointer, length) pieces of the log ring buffer in reading order.
fn read_finalize(
    store: &mut Store<PeakMemory>,
    finalize: &wasmtime::TypedFunc<(), u32>,
    memory: &Memory,
) -> Result<(Vec<u8>, Vec<u8>), HostError> {
    // finalize is protocol, not Function work: give it its own fuel so a Function that used the
    // hard stop still has its logs read.
    store
        .set_fuel(HARD_STOP_FUEL)
        .map_err(|e| HostError::Engine(format!("{e:#}")))?;
    let words_at = finalize
        .call(&mut *store, ())
        .map_err(|e| HostError::Protocol(format!("`finalize` failed: {e:#}")))?
        as usize;
    let mut words = [0_u32; 6];
    for (i, word) in words.iter_mut().enumerate() {
        *word = read_u32(memory, store, words_at.saturating_add(i.saturating_mul(4)))?;
    }
    let [output_at, output_len, log1_at, log1_len, log2_at, log2_len] = words;
    let output = read_bytes(memory, store, output_at, output_len, "output")?;
    let mut logs = read_bytes(memory, store, log1_at, log1_len, "logs")?;
    logs.extend(read_bytes(memory, store, log2_at, log2_len, "logs")?);
    Ok((output, logs))
}

fn json_len(value: &Value) -> u64 {
    serde_json::to_vec(value).map_or(0, |bytes| bytes.len() as u64)
}
