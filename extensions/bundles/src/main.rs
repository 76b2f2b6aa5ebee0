//! bundles: the marginwise cart transform Function (handle `bundles`, module `bundles.wasm`,
//! target `cart.transform.run`).
//!
//! It reads (through `marginwise-input`) the cart transform's metafields (bundle definitions
//! `$app.bundles`, bundle policy `$app.policy` and its compiled form `$app.policy_compiled`), the
//! shopper's profile and every line's price, quantity, variant, `$app.offer`
//! metafield and `_mw_bundle` attribute as raw text into a
//! [`marginwise_engine::BundleRequest`], calls [`marginwise_engine::evaluate_bundles`], and
//! renders the decision: one `linesMerge` per merged bundle (with the engine's percentage decrease
//! and the merged marker attribute) and one `lineExpand` per bundle parent sold as one line (with
//! fixed per-unit component prices that add up to the parent's price, and the expanded marker).
//!
//! What it deliberately does not do: decide anything (which bundles merge, how much they get, the
//! margin guard, the holdout and the price split all live in the engine), render `lineUpdate`
//! (the engine never asks for it; see `engine/src/bundle/mod.rs`), or fail: a broken metafield or
//! policy becomes a reason in one short log line and fewer operations, never a blocked checkout.
//! Money never passes through a float: amounts arrive and leave as decimal strings.

use shopify_function::prelude::*;

// One run per instance, so freed memory is never reused: a bump allocator that never frees (as in
// the offers Function; see there) instead of dlmalloc.
#[cfg(target_family = "wasm")]
#[global_allocator]
// SAFETY: wasm32-unknown-unknown without the atomics feature has one thread, so the allocator is
// never entered concurrently, which is what `AssumeSingleThreaded` requires.
static ALLOCATOR: lol_alloc::AssumeSingleThreaded<lol_alloc::LeakingAllocator> =
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::LeakingAllocator::new()) };

mod cart_transform_run;

#[cfg(test)]
mod tests;

// Only the output types are generated: the input is read by `marginwise-input` (short aliases,
// interned keys, no `__typename`; see its docs). Every `Decimal` this Function writes is the exact
// text the engine formats instead of the crate's default `f64` wrapper.
#[typegen("schema.graphql", enums_as_str = ["CurrencyCode"], custom_scalar_overrides = {
    "PriceAdjustmentValue.value" => ::std::string::String,
    "ExpandedItemFixedPricePerUnitAdjustment.amount" => ::std::string::String,
})]
pub mod schema {}

/// The cart transform's input, read into an engine request.
pub(crate) type Input = marginwise_input::BundlesInput;

/// The module has one export; a plain start of the module has nothing to do.
fn main() {
    log!("bundles: invoke the cart_transform_run export");
}
