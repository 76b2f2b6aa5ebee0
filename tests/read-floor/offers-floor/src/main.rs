//! The read floor of the offers Function: the cost of reading its input, with no decision.
//!
//! It is generated from the very same schema and input queries as `extensions/offers`, reads every
//! field those queries select (each string in full, as the real Function copies them), and returns
//! an empty operation list. The budget suite divides the real Function's instructions by this
//! one's to show what deciding costs on top of reading.
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

#[typegen("../../../extensions/offers/schema.graphql", enums_as_str = ["CurrencyCode"], custom_scalar_overrides = {
    "ProductDiscountCandidateFixedAmount.amount" => ::std::string::String,
    "FixedAmount.amount" => ::std::string::String,
    "Percentage.value" => ::std::string::String,
})]
pub mod schema {
    #[query("../../../input-queries/offers/cart_lines_discounts_generate_run.graphql", custom_scalar_overrides = {
        "Input.presentmentCurrencyRate" => ::std::string::String,
        "Input.cart.lines.cost.amountPerQuantity.amount" => ::std::string::String,
        "Input.cart.deliveryGroups.selectedDeliveryOption.cost.amount" => ::std::string::String,
        "Input.cart.deliveryGroups.deliveryOptions.cost.amount" => ::std::string::String,
    })]
    pub mod cart_lines_discounts_generate_run {}

    #[query("../../../input-queries/offers/cart_delivery_options_discounts_generate_run.graphql", custom_scalar_overrides = {
        "Input.presentmentCurrencyRate" => ::std::string::String,
        "Input.cart.lines.cost.amountPerQuantity.amount" => ::std::string::String,
        "Input.cart.deliveryGroups.selectedDeliveryOption.cost.amount" => ::std::string::String,
        "Input.cart.deliveryGroups.deliveryOptions.cost.amount" => ::std::string::String,
    })]
    pub mod cart_delivery_options_discounts_generate_run {}
}

/// Touches every field of either target's input (the two queries generate identically shaped
/// types) and returns a checksum of what it read.
macro_rules! read_everything {
    ($input:expr, $query:ident) => {{
        let input = $input;
        let mut sum: usize = 0;
        let discount = input.discount();
        sum = sum.wrapping_add(discount.discount_classes().len());
        if let Some(policy) = discount.metafield() {
            sum = sum.wrapping_add(policy.value().len());
        }
        sum = sum.wrapping_add(input.presentment_currency_rate().len());
        let cart = input.cart();
        sum = sum.wrapping_add(cart.cost().total_amount().currency_code().len());
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
            sum = sum.wrapping_add(line.cost().amount_per_quantity().amount().len());
            if let crate::schema::$query::input::cart::lines::Merchandise::ProductVariant(variant) =
                line.merchandise()
            {
                if let Some(offer) = variant.metafield() {
                    sum = sum.wrapping_add(offer.value().len());
                }
            }
        }
        for group in cart.delivery_groups().iter() {
            sum = sum.wrapping_add(group.id().len());
            if let Some(selected) = group.selected_delivery_option() {
                sum = sum.wrapping_add(selected.cost().amount().len());
            }
            for option in group.delivery_options().iter() {
                sum = sum.wrapping_add(option.cost().amount().len());
            }
        }
        sum
    }};
}

#[shopify_function]
fn cart_lines_discounts_generate_run(
    input: schema::cart_lines_discounts_generate_run::Input,
) -> Result<schema::CartLinesDiscountsGenerateRunResult> {
    let sum = read_everything!(&input, cart_lines_discounts_generate_run);
    log!("floor {sum}");
    Ok(schema::CartLinesDiscountsGenerateRunResult { operations: vec![] })
}

#[shopify_function]
fn cart_delivery_options_discounts_generate_run(
    input: schema::cart_delivery_options_discounts_generate_run::Input,
) -> Result<schema::CartDeliveryOptionsDiscountsGenerateRunResult> {
    let sum = read_everything!(&input, cart_delivery_options_discounts_generate_run);
    log!("floor {sum}");
    Ok(schema::CartDeliveryOptionsDiscountsGenerateRunResult { operations: vec![] })
}

/// The module has one export per target; a plain start of the module has nothing to do.
fn main() {}
