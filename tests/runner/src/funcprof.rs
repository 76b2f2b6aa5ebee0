//! Where a Function's own instructions go, function by function.
//!
//! The provider profile (see [`crate::host::Host::run_profiled`]) splits a run into provider exports
//! and "the Function's own code". This splits the latter further: every local function of the
//! (already trampolined) module gets a wrapper that calls host `enter(id)`, the function, then
//! `exit(id)`, and every call site, table entry and export is pointed at the wrapper. The host reads
//! the fuel at each enter and exit and books the difference to the function on top of its stack
//! (self instructions) and, at exit, to the function that returns (inclusive instructions).
//!
//! The wrappers add a few instructions per call (the argument `local.get`s, two calls and a
//! constant), booked to the caller, so totals run slightly above an uninstrumented run's. The
//! module must keep its name section (build with `CARGO_PROFILE_WASM_STRIP=false`) for the table
//! to show names; without it functions are listed by index.

use std::collections::HashMap;

use walrus::ir::Instr;
use walrus::{ExportItem, FunctionId, FunctionKind, Module, ValType};

/// Import module of the two host hooks added by [`instrument`].
pub const HOOK_MODULE: &str = "mw_profile";

/// Rewrites a (trampolined) module so that every local function reports entry and exit. Returns
/// the new module and the name of each function id the hooks will report.
pub fn instrument(wasm: &[u8]) -> Result<(Vec<u8>, Vec<String>), String> {
    let mut module = Module::from_buffer(wasm).map_err(|e| format!("not valid wasm: {e:#}"))?;
    let hook_type = module.types.add(&[ValType::I32], &[]);
    let (enter, _) = module.add_import_func(HOOK_MODULE, "enter", hook_type);
    let (exit, _) = module.add_import_func(HOOK_MODULE, "exit", hook_type);

    let locals: Vec<FunctionId> = module.funcs.iter_local().map(|(id, _)| id).collect();
    let mut names = Vec::with_capacity(locals.len());
    let mut wrapper_of: HashMap<FunctionId, FunctionId> = HashMap::new();
    for (index, &func) in locals.iter().enumerate() {
        let name = module.funcs.get(func).name.clone().map_or_else(
            || format!("function[{}]", func.index()),
            |raw| format!("{:#}", rustc_demangle::demangle(&raw)),
        );
        names.push(name);
        let ty = module.types.get(module.funcs.get(func).ty());
        let (params, results) = (ty.params().to_vec(), ty.results().to_vec());
        let id = i32::try_from(index).map_err(|_| "too many functions".to_owned())?;
        let args: Vec<_> = params.iter().map(|&p| module.locals.add(p)).collect();
        let mut builder = walrus::FunctionBuilder::new(&mut module.types, &params, &results);
        let mut body = builder.func_body();
        body.i32_const(id).call(enter);
        for &arg in &args {
            body.local_get(arg);
        }
        body.call(func).i32_const(id).call(exit);
        let wrapper = builder.finish(args, &mut module.funcs);
        wrapper_of.insert(func, wrapper);
    }

    for &func in &locals {
        let FunctionKind::Local(local) = &mut module.funcs.get_mut(func).kind else {
            continue;
        };
        let mut visitor = Redirect {
            wrapper_of: &wrapper_of,
        };
        let entry = local.entry_block();
        walrus::ir::dfs_pre_order_mut(&mut visitor, local, entry);
    }
    for element in module.elements.iter_mut() {
        if let walrus::ElementItems::Functions(funcs) = &mut element.items {
            for func in funcs.iter_mut() {
                if let Some(&wrapper) = wrapper_of.get(func) {
                    *func = wrapper;
                }
            }
        }
    }
    for export in module.exports.iter_mut() {
        if let ExportItem::Function(func) = &mut export.item
            && let Some(&wrapper) = wrapper_of.get(func)
        {
            *func = wrapper;
        }
    }
    Ok((module.emit_wasm(), names))
}

struct Redirect<'a> {
    wrapper_of: &'a HashMap<FunctionId, FunctionId>,
}

impl walrus::ir::VisitorMut for Redirect<'_> {
    fn visit_instr_mut(&mut self, instr: &mut Instr, _: &mut walrus::InstrLocId) {
        if let Instr::Call(call) = instr
            && let Some(&wrapper) = self.wrapper_of.get(&call.func)
        {
            call.func = wrapper;
        }
    }
}

/// Self and inclusive instructions per function, filled by the host hooks.
#[derive(Debug, Default)]
pub struct Frames {
    stack: Vec<(u32, u64)>,
    last_fuel: u64,
    /// Per function id: (calls, self instructions, inclusive instructions).
    pub totals: HashMap<u32, (u64, u64, u64)>,
}

impl Frames {
    /// A function is entered with `fuel` remaining.
    pub fn enter(&mut self, id: u32, fuel: u64) {
        self.book_self(fuel);
        self.stack.push((id, fuel));
        let entry = self.totals.entry(id).or_default();
        entry.0 = entry.0.saturating_add(1);
    }

    /// Function `id` returns with `fuel` remaining. Wrappers nest strictly, so it is the frame on
    /// top; a mismatch (which only a broken rewrite could cause) books no inclusive count.
    pub fn exit(&mut self, id: u32, fuel: u64) {
        self.book_self(fuel);
        if let Some((top, entered_with)) = self.stack.pop()
            && top == id
        {
            let entry = self.totals.entry(top).or_default();
            entry.2 = entry.2.saturating_add(entered_with.saturating_sub(fuel));
        }
    }

    fn book_self(&mut self, fuel: u64) {
        let used = self.last_fuel.saturating_sub(fuel);
        self.last_fuel = fuel;
        if let Some(&(top, _)) = self.stack.last() {
            let entry = self.totals.entry(top).or_default();
            entry.1 = entry.1.saturating_add(used);
        }
    }

    /// Starts counting from `fuel` (set just before the export is called).
    pub fn start(&mut self, fuel: u64) {
        self.last_fuel = fuel;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn every_call_goes_through_a_wrapper_that_reports_enter_and_exit() {
        let wasm = wat::parse_str(
            r#"(module
                (func $leaf (param i32) (result i32) local.get 0 i32.const 1 i32.add)
                (func $root (export "run") (result i32) i32.const 41 call $leaf))"#,
        )
        .unwrap();
        let (rewritten, names) = instrument(&wasm).unwrap();
        assert_eq!(names.len(), 2);
        let module = Module::from_buffer(&rewritten).unwrap();
        let hooks: Vec<_> = module
            .imports
            .iter()
            .filter(|import| import.module == HOOK_MODULE)
            .map(|import| import.name.as_str())
            .collect();
        assert_eq!(hooks, ["enter", "exit"]);
        // Two originals plus two wrappers; the export and the inner call both reach wrappers.
        assert_eq!(module.funcs.iter_local().count(), 4);
        let ExportItem::Function(exported) = module.exports.iter().next().unwrap().item else {
            panic!("the export is a function");
        };
        assert!(
            module.funcs.get(exported).name.is_none(),
            "export points at a wrapper"
        );
    }

    #[test]
    fn frames_book_own_and_inclusive_instructions() {
        let mut frames = Frames::default();
        frames.start(1_000);
        frames.enter(0, 990); // 10 before any function: booked to nobody
        frames.enter(1, 960); // root ran 30
        frames.exit(1, 900); // leaf ran 60
        frames.exit(0, 880); // root ran 20 more
        assert_eq!(frames.totals[&0], (1, 50, 110));
        assert_eq!(frames.totals[&1], (1, 60, 60));
    }
}
