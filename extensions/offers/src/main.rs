//! offers: the marginwise discount Function (handle `offers`, module `offers.wasm`).
//!
//! Two targets, one decision. `cart.lines.discounts.generate.run` and
//! `cart.delivery-options.discounts.generate.run` read the same facts (the merchant's policy on the
//! discount node, the shopper's profile, each line's price, quantity and `$app.offer` metafield,
//! and each delivery group's shipping cost), read by `marginwise-input` as raw text into a
//! [`marginwise_engine::Request`], call [`marginwise_engine::evaluate`] and render the part of the
//! decision their target may return: product and order discounts on the lines target, shipping
//! discounts on the delivery target. Because both build the identical request, both pick the same
//! winning offer, and an offer is rendered by exactly one of them.
//!
//! What it deliberately does not do: decide anything. Eligibility, caps, the margin guard, the
//! holdout and offer selection all live in the engine, where they are tested without Shopify; a
//! business rule in this crate is a bug. It also never fails: the engine cannot fail, and a
//! decision without an offer renders as an empty operation list, so a broken policy or metafield
//! costs the shopper a personalized offer, never the checkout. Money never passes through a float:
//! amounts arrive and leave as decimal strings (see the `custom_scalar_overrides` below).

// A Shopify Function is entered only through its named exports. Without `main` the module drops the
// standard start-up code (about 1 KB); native builds (tests) still get an empty `main`.
#![cfg_attr(target_family = "wasm", no_main)]

use shopify_function::prelude::*;

// A Function instance runs one export once and is then thrown away, so memory is never worth
// giving back: a bump allocator that never frees replaces dlmalloc's bookkeeping (about a fifth of
// the Function's own instructions on a 200-line cart) and stays far below the 10 MB memory limit
// (the budget suite reports the peak per cart).
#[cfg(target_family = "wasm")]
#[global_allocator]
// SAFETY: wasm32-unknown-unknown without the atomics feature has one thread, so the allocator is
// never entered concurrently, which is what `AssumeSingleThreaded` requires.
static ALLOCATOR: lol_alloc::AssumeSingleThreaded<lol_alloc::LeakingAllocator> =
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::LeakingAllocator::new()) };

mod cart_delivery_options_discounts_generate_run;
mod cart_lines_discounts_generate_run;
mod facts;

#[cfg(test)]
mod tests;

// `enums_as_str` lists only `CurrencyCode` because our subset declares no `LanguageCode` or
// `CountryCode` (the macro's default list names all three).
//
// Only the output types are generated: the input is read by `marginwise-input`, whose reader asks
// for less than a generated one can (short aliases, interned keys, no `__typename`; see its docs).
// Every money amount the outputs write is a `Decimal` in the schema. The crate's default maps
// `Decimal` to an `f64` wrapper; we write the exact decimal text the engine formats instead.
#[typegen("schema.graphql", enums_as_str = ["CurrencyCode"], custom_scalar_overrides = {
    "ProductDiscountCandidateFixedAmount.amount" => ::std::string::String,
    "FixedAmount.amount" => ::std::string::String,
    "Percentage.value" => ::std::string::String,
})]
pub mod schema {}

/// The input both exports read. Both targets must read the same facts to pick the same winner,
/// so their two query files select exactly the same fields
/// (`tests::input_queries_select_the_same_fields` enforces it) and one reader serves both.
pub(crate) type Input = marginwise_input::OffersInput;

#[cfg(not(target_family = "wasm"))]
fn main() {}
