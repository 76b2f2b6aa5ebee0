//! The read floor of the offers Function: the cost of reading its input, with no decision.
//!
//! It reads its input through the very same reader as `extensions/offers` (`marginwise-input`,
//! into the same engine request, every string copied) and returns an empty operation list. The
//! budget suite divides the real Function's instructions by this one's to show what deciding costs
//! on top of reading.
//!
//! It deliberately parses nothing and calls no engine: anything beyond reading would raise the
//! floor and flatter the real Function. The length of every string read feeds a checksum that is
//! logged, so the compiler cannot drop a read as unused (the log is a few bytes, once per run).

// Entered only through its exports, like the Function (see there).
#![cfg_attr(target_family = "wasm", no_main)]

use marginwise_engine::{PolicySource, ProfileInput, Request, Target, VariantInput};
use marginwise_input::OffersInput;
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
#[typegen("../../../extensions/offers/schema.graphql", enums_as_str = ["CurrencyCode"], custom_scalar_overrides = {
    "ProductDiscountCandidateFixedAmount.amount" => ::std::string::String,
    "FixedAmount.amount" => ::std::string::String,
    "Percentage.value" => ::std::string::String,
})]
pub mod schema {}

/// A checksum of everything read: the length of every string and every number.
fn checksum(request: &Request) -> usize {
    let mut sum = request.currency_code.len() + request.presentment_rate.len();
    sum += request.holdout_key.len();
    let classes = request.classes;
    sum +=
        usize::from(classes.product) + usize::from(classes.order) + usize::from(classes.shipping);
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
        if let VariantInput::Text(text) = &line.variant {
            sum += text.len();
        }
    }
    for group in &request.delivery_groups {
        sum += group.id.len() + group.shipping_cost.as_ref().map_or(0, String::len);
        sum += group.option_costs.iter().map(String::len).sum::<usize>();
    }
    sum
}

#[shopify_function]
fn cart_lines_discounts_generate_run(
    input: OffersInput,
) -> Result<schema::CartLinesDiscountsGenerateRunResult> {
    log!("floor {}", checksum(&input.request(Target::CartLines)));
    Ok(schema::CartLinesDiscountsGenerateRunResult { operations: vec![] })
}

#[shopify_function]
fn cart_delivery_options_discounts_generate_run(
    input: OffersInput,
) -> Result<schema::CartDeliveryOptionsDiscountsGenerateRunResult> {
    log!(
        "floor {}",
        checksum(&input.request(Target::DeliveryOptions))
    );
    Ok(schema::CartDeliveryOptionsDiscountsGenerateRunResult { operations: vec![] })
}

#[cfg(not(target_family = "wasm"))]
fn main() {}
