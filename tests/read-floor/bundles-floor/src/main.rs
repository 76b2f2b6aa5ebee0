//! The read floor of the bundles Function: the cost of reading its input, with no decision.
//!
//! It reads its input through the very same reader as `extensions/bundles` (`marginwise-input`,
//! into the same engine request, every string copied): the cart transform's metafields (definitions, policy and compiled policy), the rate,
//! the customer's id, order count and profile, and per line the id, quantity, `_mw_bundle`
//! attribute, unit price, variant id and `$app.offer`, and the first line's currency code. It
//! returns no operation. The budget suite divides the real
//! Function's instructions by this one's to show what deciding costs on top of reading.
//!
//! It deliberately parses nothing and calls no engine: anything beyond reading would raise the
//! floor and flatter the real Function. The length of every string read feeds a checksum that is
//! logged, so the compiler cannot drop a read as unused (the log is a few bytes, once per run).

use marginwise_engine::bundle::BundleRequest;
use marginwise_engine::{PolicySource, ProfileInput, VariantInput};
use marginwise_input::BundlesInput;
use shopify_function::Result;
use shopify_function::prelude::*;

// The same allocator as the Function it is the floor of, so the ratio compares deciding with
// reading and not two allocators.
#[cfg(target_family = "wasm")]
#[global_allocator]
// SAFETY: wasm32-unknown-unknown without the atomics feature has one thread, so the allocator is
// never entered concurrently, which is what `AssumeSingleThreaded` requires.
static ALLOCATOR: lol_alloc::AssumeSingleThreaded<lol_alloc::LeakingAllocator> =
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::LeakingAllocator::new()) };

// Output types only, as in the Function.
#[typegen("../../../extensions/bundles/schema.graphql", enums_as_str = ["CurrencyCode"], custom_scalar_overrides = {
    "PriceAdjustmentValue.value" => ::std::string::String,
    "ExpandedItemFixedPricePerUnitAdjustment.amount" => ::std::string::String,
})]
pub mod schema {}

/// A checksum of everything read: the length of every string and every number.
fn checksum(request: &BundleRequest) -> usize {
    let mut sum = request.currency_code.len() + request.presentment_rate.len();
    sum += request.holdout_key.len() + request.definitions.as_ref().map_or(0, String::len);
    if let ProfileInput::Text(text) = &request.profile {
        sum += text.len();
    }
    match &request.policy {
        PolicySource::Missing => {}
        PolicySource::Json(text) => sum += text.len(),
        PolicySource::Compiled { json, compiled } => sum += json.len() + compiled.len(),
    }
    sum = sum.wrapping_add(request.customer.number_of_orders.unwrap_or(0) as usize);
    for line in &request.lines {
        sum = sum.wrapping_add(line.id.len() + line.unit_price.len() + line.quantity as usize);
        sum += line.variant_id.as_ref().map_or(0, String::len);
        sum += line.marker.as_ref().map_or(0, String::len);
        if let VariantInput::Text(text) = &line.variant {
            sum += text.len();
        }
    }
    sum
}

#[shopify_function]
fn cart_transform_run(input: BundlesInput) -> Result<schema::CartTransformRunResult> {
    log!("floor {}", checksum(&input.request()));
    Ok(schema::CartTransformRunResult { operations: vec![] })
}

/// The module has one export; a plain start of the module has nothing to do.
fn main() {}
