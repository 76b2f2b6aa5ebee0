//! The read floor of the bundles Function: the cost of reading its input, with no decision.
//!
//! It is generated from the very same schema and input query as `extensions/bundles` and reads
//! exactly the fields that Function reads, in full (it copies every string into the engine's
//! request): both cart transform metafields, the rate, the customer's id, order count and profile,
//! and per line the id, quantity, `_mw_bundle` attribute, unit price, variant id and `$app.offer`.
//! Like the Function it reads the currency code of the first line only (every line is priced in
//! the presentment currency). It returns no operation. The budget suite divides the real
//! Function's instructions by this one's to show what deciding costs on top of reading.
//!
//! It deliberately parses nothing and calls no engine: anything beyond touching each field would
//! raise the floor and flatter the real Function. Each value read feeds a checksum that is logged,
//! so the compiler cannot drop a read as unused (the log is a few bytes, once per run).

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

#[typegen("../../../extensions/bundles/schema.graphql", enums_as_str = ["CurrencyCode"], custom_scalar_overrides = {
    "PriceAdjustmentValue.value" => ::std::string::String,
    "ExpandedItemFixedPricePerUnitAdjustment.amount" => ::std::string::String,
})]
pub mod schema {
    #[query("../../../input-queries/bundles/cart_transform_run.graphql", custom_scalar_overrides = {
        "Input.presentmentCurrencyRate" => ::std::string::String,
        "Input.cart.lines.cost.amountPerQuantity.amount" => ::std::string::String,
    })]
    pub mod cart_transform_run {}
}

use schema::cart_transform_run::input::cart::lines::Merchandise;

#[shopify_function]
fn cart_transform_run(
    input: schema::cart_transform_run::Input,
) -> Result<schema::CartTransformRunResult> {
    let mut sum: usize = 0;
    let transform = input.cart_transform();
    if let Some(bundles) = transform.bundles() {
        sum = sum.wrapping_add(bundles.value().len());
    }
    if let Some(policy) = transform.policy() {
        sum = sum.wrapping_add(policy.value().len());
    }
    sum = sum.wrapping_add(input.presentment_currency_rate().len());
    let cart = input.cart();
    if let Some(customer) = cart.buyer_identity().and_then(|buyer| buyer.customer()) {
        sum = sum.wrapping_add(customer.id().len());
        sum = sum.wrapping_add(*customer.number_of_orders() as usize);
        if let Some(profile) = customer.metafield() {
            sum = sum.wrapping_add(profile.value().len());
        }
    }
    for line in cart.lines().iter() {
        sum = sum.wrapping_add(line.id().len());
        sum = sum.wrapping_add(*line.quantity() as usize);
        if let Some(value) = line.attribute().and_then(|attribute| attribute.value()) {
            sum = sum.wrapping_add(value.len());
        }
        sum = sum.wrapping_add(line.cost().amount_per_quantity().amount().len());
        if let Merchandise::ProductVariant(variant) = line.merchandise() {
            sum = sum.wrapping_add(variant.id().len());
            if let Some(offer) = variant.metafield() {
                sum = sum.wrapping_add(offer.value().len());
            }
        }
    }
    if let Some(first) = cart.lines().iter().next() {
        sum = sum.wrapping_add(first.cost().amount_per_quantity().currency_code().len());
    }
    log!("floor {sum}");
    Ok(schema::CartTransformRunResult { operations: vec![] })
}

/// The module has one export; a plain start of the module has nothing to do.
fn main() {}
