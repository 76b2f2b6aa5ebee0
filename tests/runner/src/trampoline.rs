//! The trampoline rewrite: makes a Function module callable against a separately instantiated
//! Wasm API provider.
//!
//! A Function imports `shopify_function_v2.*` and passes pointers into its own memory; the provider
//! is another module with its own memory. The rewrite therefore (1) imports the provider's memory as
//! a second memory of the Function module, (2) points every pointer-free import straight at the
//! provider's matching `_`-prefixed export, and (3) replaces each import that passes a string with a
//! small local shim that asks the provider for space (or an address) and copies the bytes across
//! with a multi-memory `memory.copy`. The shims are part of the Function's instruction count, as
//! they are on Shopify.
//!
//! The rewrite does not validate the Function beyond the imports it touches: wasmtime validates the
//! rewritten module when it compiles it.

use walrus::ir::{BinaryOp, LoadKind, MemArg, UnaryOp};
use walrus::{FunctionId, ImportKind, LocalId, MemoryId, Module, ValType};

/// The import module every Wasm API Function uses (provider major version 2).
pub const PROVIDER_MODULE: &str = "shopify_function_v2";

/// Why a Function module could not be rewritten.
#[derive(Debug, thiserror::Error)]
pub enum TrampolineError {
    #[error("function module is not valid wasm: {0}")]
    Parse(String),
    #[error("function module does not import `{PROVIDER_MODULE}`: it does not use the Wasm API")]
    NotWasmApi,
    #[error("function module imports unknown `{PROVIDER_MODULE}.{name}`")]
    UnknownImport { name: String },
    #[error(
        "function module imports `{PROVIDER_MODULE}.{name}` with type {found}, expected {expected}"
    )]
    ImportType {
        name: String,
        found: String,
        expected: String,
    },
    #[error("function module must define exactly one memory of its own, found {found}")]
    Memory { found: usize },
    #[error("could not rewrite import `{name}`: {message}")]
    Rewrite { name: String, message: String },
}

use ValType::{F64, I32, I64};

/// Imports that carry no pointer into Function memory: renamed to the provider's `_` export.
/// Each entry is (name, params, results) as the Function declares them.
const DIRECT: &[(&str, &[ValType], &[ValType])] = &[
    ("shopify_function_input_get", &[], &[I64]),
    ("shopify_function_input_get_val_len", &[I64], &[I32]),
    (
        "shopify_function_input_get_interned_obj_prop",
        &[I64, I32],
        &[I64],
    ),
    ("shopify_function_input_get_at_index", &[I64, I32], &[I64]),
    (
        "shopify_function_input_get_obj_key_at_index",
        &[I64, I32],
        &[I64],
    ),
    ("shopify_function_output_new_bool", &[I32], &[I32]),
    ("shopify_function_output_new_null", &[], &[I32]),
    ("shopify_function_output_new_i32", &[I32], &[I32]),
    ("shopify_function_output_new_f64", &[F64], &[I32]),
    ("shopify_function_output_new_object", &[I32], &[I32]),
    ("shopify_function_output_finish_object", &[], &[I32]),
    ("shopify_function_output_new_array", &[I32], &[I32]),
    ("shopify_function_output_finish_array", &[], &[I32]),
    (
        "shopify_function_output_new_interned_utf8_str",
        &[I32],
        &[I32],
    ),
];

/// Imports that pass a string through Function memory: replaced by a shim.
const SHIMMED: &[(&str, &[ValType], &[ValType])] = &[
    (
        "shopify_function_input_read_utf8_str",
        &[I32, I32, I32],
        &[],
    ),
    (
        "shopify_function_input_get_obj_prop",
        &[I64, I32, I32],
        &[I64],
    ),
    ("shopify_function_output_new_utf8_str", &[I32, I32], &[I32]),
    ("shopify_function_intern_utf8_str", &[I32, I32], &[I32]),
    ("shopify_function_log_new_utf8_str", &[I32, I32], &[]),
];

/// Rewrites a Function module so it runs against the provider module linked as
/// [`PROVIDER_MODULE`]. Returns the new module's bytes.
pub fn apply(function_wasm: &[u8]) -> Result<Vec<u8>, TrampolineError> {
    let mut module =
        Module::from_buffer(function_wasm).map_err(|e| TrampolineError::Parse(format!("{e:#}")))?;

    let own_memories: Vec<MemoryId> = module
        .memories
        .iter()
        .filter(|memory| memory.import.is_none())
        .map(|memory| memory.id())
        .collect();
    let [guest_memory] = own_memories[..] else {
        return Err(TrampolineError::Memory {
            found: own_memories.len(),
        });
    };

    let mut provider_imports: Vec<(String, FunctionId, walrus::ImportId)> = Vec::new();
    for import in module.imports.iter() {
        if import.module != PROVIDER_MODULE {
            continue;
        }
        match import.kind {
            ImportKind::Function(function) => {
                provider_imports.push((import.name.clone(), function, import.id()));
            }
            _ => {
                return Err(TrampolineError::UnknownImport {
                    name: import.name.clone(),
                });
            }
        }
    }
    if provider_imports.is_empty() {
        return Err(TrampolineError::NotWasmApi);
    }

    // The provider's memory becomes the Function's second memory. A minimum of one page is below
    // anything the provider starts with, so the import always links.
    let (provider_memory, _) =
        module.add_import_memory(PROVIDER_MODULE, "memory", false, false, 1, None, None);
    let mut shims = Shims::new(guest_memory, provider_memory);

    for (name, function, import_id) in provider_imports {
        let declared = function_signature(&module, function);
        if let Some((_, params, results)) = DIRECT.iter().find(|(known, _, _)| *known == name) {
            check_signature(&name, &declared, params, results)?;
            let import = module.imports.get_mut(import_id);
            import.name = format!("_{name}");
        } else if let Some((_, params, results)) =
            SHIMMED.iter().find(|(known, _, _)| *known == name)
        {
            check_signature(&name, &declared, params, results)?;
            shims.replace(&mut module, &name, function)?;
        } else {
            return Err(TrampolineError::UnknownImport { name });
        }
    }

    Ok(module.emit_wasm())
}

fn function_signature(module: &Module, function: FunctionId) -> (Vec<ValType>, Vec<ValType>) {
    let ty = module.types.get(module.funcs.get(function).ty());
    (ty.params().to_vec(), ty.results().to_vec())
}

fn check_signature(
    name: &str,
    declared: &(Vec<ValType>, Vec<ValType>),
    params: &[ValType],
    results: &[ValType],
) -> Result<(), TrampolineError> {
    if declared.0 == params && declared.1 == results {
        return Ok(());
    }
    Err(TrampolineError::ImportType {
        name: name.to_owned(),
        found: format!("{:?} -> {:?}", declared.0, declared.1),
        expected: format!("{params:?} -> {results:?}"),
    })
}

/// Builds the string-passing shims, importing each provider helper once.
struct Shims {
    guest_memory: MemoryId,
    provider_memory: MemoryId,
    helpers: Vec<(&'static str, FunctionId)>,
}

/// A 32-bit load from the provider's memory at a fixed offset (the provider returns small arrays
/// of `usize`, 4 bytes each on wasm32).
fn u32_at(offset: u32) -> MemArg {
    MemArg { align: 4, offset }
}

impl Shims {
    fn new(guest_memory: MemoryId, provider_memory: MemoryId) -> Self {
        Self {
            guest_memory,
            provider_memory,
            helpers: Vec::new(),
        }
    }

    /// The provider export `name`, imported on first use.
    fn helper(
        &mut self,
        module: &mut Module,
        name: &'static str,
        params: &[ValType],
        results: &[ValType],
    ) -> FunctionId {
        if let Some((_, id)) = self.helpers.iter().find(|(known, _)| *known == name) {
            return *id;
        }
        let ty = module.types.add(params, results);
        let (id, _) = module.add_import_func(PROVIDER_MODULE, name, ty);
        self.helpers.push((name, id));
        id
    }

    fn replace(
        &mut self,
        module: &mut Module,
        name: &str,
        function: FunctionId,
    ) -> Result<(), TrampolineError> {
        let guest = self.guest_memory;
        let provider = self.provider_memory;
        // Locals beyond the arguments are allocated before the body is built.
        let scratch_i32 = [module.locals.add(I32), module.locals.add(I32)];
        let scratch_i64 = module.locals.add(I64);
        let rewrite_error = |message: String| TrampolineError::Rewrite {
            name: name.to_owned(),
            message,
        };

        match name {
            // (src: provider string handle, out: guest pointer, len)
            "shopify_function_input_read_utf8_str" => {
                let addr = self.helper(
                    module,
                    "_shopify_function_input_get_utf8_str_addr",
                    &[I32],
                    &[I32],
                );
                replace(module, function, |body, args| {
                    let (src, out, len) = (arg(args, 0)?, arg(args, 1)?, arg(args, 2)?);
                    body.local_get(out)
                        .local_get(src)
                        .call(addr)
                        .local_get(len)
                        .memory_copy(provider, guest);
                    Ok(())
                })
                .map_err(rewrite_error)
            }
            // (scope, ptr: guest pointer to the property name, len) -> value
            "shopify_function_input_get_obj_prop" => {
                let alloc = self.helper(module, "_shopify_function_alloc", &[I32], &[I32]);
                let get = self.helper(
                    module,
                    "_shopify_function_input_get_obj_prop",
                    &[I64, I32, I32],
                    &[I64],
                );
                let [copy, _] = scratch_i32;
                replace(module, function, |body, args| {
                    let (scope, ptr, len) = (arg(args, 0)?, arg(args, 1)?, arg(args, 2)?);
                    // The provider reads the name from its own memory: copy it into a fresh
                    // provider allocation (never freed, as on Shopify: the run is short-lived).
                    body.local_get(len)
                        .call(alloc)
                        .local_tee(copy)
                        .local_get(ptr)
                        .local_get(len)
                        .memory_copy(guest, provider)
                        .local_get(scope)
                        .local_get(copy)
                        .local_get(len)
                        .call(get);
                    Ok(())
                })
                .map_err(rewrite_error)
            }
            // (ptr, len) -> write result; the provider returns (result << 32) | destination.
            "shopify_function_output_new_utf8_str" | "shopify_function_intern_utf8_str" => {
                let provider_name = if name == "shopify_function_output_new_utf8_str" {
                    "_shopify_function_output_new_utf8_str"
                } else {
                    "_shopify_function_intern_utf8_str"
                };
                let reserve = self.helper(module, provider_name, &[I32], &[I64]);
                let guard_on_result = name == "shopify_function_output_new_utf8_str";
                let [result, _] = scratch_i32;
                let packed = scratch_i64;
                replace(module, function, |body, args| {
                    let (ptr, len) = (arg(args, 0)?, arg(args, 1)?);
                    body.local_get(len)
                        .call(reserve)
                        .local_tee(packed)
                        .i64_const(32)
                        .binop(BinaryOp::I64ShrU)
                        .unop(UnaryOp::I32WrapI64)
                        .local_set(result);
                    if guard_on_result {
                        // A refused write (e.g. a string where the output state forbids one)
                        // returns a null destination: copy only when the provider said Ok (0).
                        body.local_get(result).unop(UnaryOp::I32Eqz).if_else(
                            None,
                            |then| {
                                then.local_get(packed)
                                    .unop(UnaryOp::I32WrapI64)
                                    .local_get(ptr)
                                    .local_get(len)
                                    .memory_copy(guest, provider);
                            },
                            |_| {},
                        );
                    } else {
                        body.local_get(packed)
                            .unop(UnaryOp::I32WrapI64)
                            .local_get(ptr)
                            .local_get(len)
                            .memory_copy(guest, provider);
                    }
                    body.local_get(result);
                    Ok(())
                })
                .map_err(rewrite_error)
            }
            // (ptr, len): the provider's ring buffer returns
            // [source offset, destination 1, length 1, destination 2, length 2].
            "shopify_function_log_new_utf8_str" => {
                let reserve =
                    self.helper(module, "_shopify_function_log_new_utf8_str", &[I32], &[I32]);
                let [area, source] = scratch_i32;
                let load = LoadKind::I32 { atomic: false };
                replace(module, function, |body, args| {
                    let (ptr, len) = (arg(args, 0)?, arg(args, 1)?);
                    body.local_get(len)
                        .call(reserve)
                        .local_set(area)
                        // source = ptr + source offset (the part kept when the message is longer
                        // than the whole buffer).
                        .local_get(ptr)
                        .local_get(area)
                        .load(provider, load, u32_at(0))
                        .binop(BinaryOp::I32Add)
                        .local_set(source)
                        // First piece.
                        .local_get(area)
                        .load(provider, load, u32_at(4))
                        .local_get(source)
                        .local_get(area)
                        .load(provider, load, u32_at(8))
                        .memory_copy(guest, provider)
                        // Second piece, after the wrap-around (length 0 when there is none).
                        .local_get(area)
                        .load(provider, load, u32_at(12))
                        .local_get(source)
                        .local_get(area)
                        .load(provider, load, u32_at(8))
                        .binop(BinaryOp::I32Add)
                        .local_get(area)
                        .load(provider, load, u32_at(16))
                        .memory_copy(guest, provider);
                    Ok(())
                })
                .map_err(rewrite_error)
            }
            other => Err(TrampolineError::UnknownImport {
                name: other.to_owned(),
            }),
        }
    }
}

/// The argument local `index` of the shim being built (walrus hands them over as a slice).
fn arg(args: &[LocalId], index: usize) -> Result<LocalId, String> {
    args.get(index)
        .copied()
        .ok_or_else(|| format!("missing argument {index}"))
}

/// Turns the imported `function` into a local one built by `build`, keeping its id so every call
/// site in the Function now calls the shim.
fn replace(
    module: &mut Module,
    function: FunctionId,
    build: impl FnOnce(&mut walrus::InstrSeqBuilder, &[LocalId]) -> Result<(), String>,
) -> Result<(), String> {
    let mut outcome = Ok(());
    module
        .replace_imported_func(function, |(body, args)| {
            outcome = build(body, args);
        })
        .map_err(|e| format!("{e:#}"))?;
    outcome
}
