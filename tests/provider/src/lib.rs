//! The host side of Shopify's Function Wasm API (`shopify_function_v2`), built as a wasm module.
//!
//! Shopify links every Function that imports `shopify_function_v2.*` against a provider module
//! compiled from the crates.io crate `shopify_function_provider`. The crate itself is a library, and
//! cargo never builds a dependency's `cdylib`, so this crate exists only to pull it into a `cdylib`:
//! all of the provider's `#[export_name]` functions (`initialize`, `finalize`, and the
//! `_shopify_function_*` exports the trampoline calls) become exports of this module.
//!
//! It deliberately contains no code of its own: the runner must measure the provider Shopify runs,
//! not a variant of it. Build it with
//! `cargo build --manifest-path tests/provider/Cargo.toml --target wasm32-unknown-unknown --release`
//! (the runner `wasm-runner` does this itself when it needs the module).

// Linking the crate is all that is needed: its exported symbols are kept by the linker.
pub use shopify_function_provider as provider;
