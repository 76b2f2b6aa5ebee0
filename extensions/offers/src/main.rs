//! offers: the marginwise discount Function (handle `offers`, module `offers.wasm`).
//!
//! Two targets, one decision. `cart.lines.discounts.generate.run` and
//! `cart.delivery-options.discounts.generate.run` read the same facts (the merchant's policy on the
//! discount node, the shopper's profile, each line's price, quantity and `$app.offer` metafield,
//! and each delivery group's shipping cost), copy them as raw text into a
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

use shopify_function::prelude::*;

mod cart_delivery_options_discounts_generate_run;
mod cart_lines_discounts_generate_run;
mod facts;

#[cfg(test)]
mod tests;

// `enums_as_str` lists only `CurrencyCode` because our subset declares no `LanguageCode` or
// `CountryCode` (the macro's default list names all three): the engine validates the code itself.
//
// Every money amount the queries read and every amount the outputs write is a `Decimal` in the
// schema. The crate's default maps `Decimal` to an `f64` wrapper; we keep the exact decimal text
// instead and let the engine parse it into integer minor units.
#[typegen("schema.graphql", enums_as_str = ["CurrencyCode"], custom_scalar_overrides = {
    "ProductDiscountCandidateFixedAmount.amount" => ::std::string::String,
    "FixedAmount.amount" => ::std::string::String,
    "Percentage.value" => ::std::string::String,
})]
pub mod schema {
    #[query("../../input-queries/offers/cart_lines_discounts_generate_run.graphql", custom_scalar_overrides = {
        "Input.presentmentCurrencyRate" => ::std::string::String,
        "Input.cart.lines.cost.amountPerQuantity.amount" => ::std::string::String,
        "Input.cart.deliveryGroups.selectedDeliveryOption.cost.amount" => ::std::string::String,
        "Input.cart.deliveryGroups.deliveryOptions.cost.amount" => ::std::string::String,
    })]
    pub mod cart_lines_discounts_generate_run {}

    #[query("../../input-queries/offers/cart_delivery_options_discounts_generate_run.graphql", custom_scalar_overrides = {
        "Input.presentmentCurrencyRate" => ::std::string::String,
        "Input.cart.lines.cost.amountPerQuantity.amount" => ::std::string::String,
        "Input.cart.deliveryGroups.selectedDeliveryOption.cost.amount" => ::std::string::String,
        "Input.cart.deliveryGroups.deliveryOptions.cost.amount" => ::std::string::String,
    })]
    pub mod cart_delivery_options_discounts_generate_run {}
}

/// Builds the engine request from either target's input.
///
/// The two input queries generate two families of Rust types with identical shapes and accessor
/// names. A macro (rather than two hand-written copies) makes the two translations identical by
/// construction, which is what lets both targets agree on the winning offer.
macro_rules! request_from_input {
    ($input:expr, $query:ident, $target:expr) => {{
        let input = $input;
        let discount = input.discount();
        let cart = input.cart();
        let currency_code = cart.cost().total_amount().currency_code().clone();
        let lines: ::std::vec::Vec<::marginwise_engine::Line> = cart
            .lines()
            .iter()
            .map(|line| {
                let variant_offer = match line.merchandise() {
                    crate::schema::$query::input::cart::lines::Merchandise::ProductVariant(
                        variant,
                    ) => variant.metafield().map(|m| m.value().as_str()),
                    _ => None,
                };
                crate::facts::line(
                    line.id(),
                    line.quantity(),
                    line.cost().amount_per_quantity().amount(),
                    variant_offer,
                )
            })
            .collect();
        let delivery_groups = cart
            .delivery_groups()
            .iter()
            .map(|group| {
                crate::facts::delivery_group(
                    group.id(),
                    group
                        .selected_delivery_option()
                        .map(|option| option.cost().amount().as_str()),
                    group
                        .delivery_options()
                        .iter()
                        .map(|option| option.cost().amount().as_str()),
                    &currency_code,
                )
            })
            .collect();
        let customer = cart.buyer_identity().and_then(|buyer| buyer.customer());
        let holdout_key = crate::facts::holdout_key(customer.map(|c| c.id().as_str()), &lines);
        ::marginwise_engine::Request {
            target: $target,
            currency_code,
            presentment_rate: input.presentment_currency_rate().clone(),
            classes: crate::facts::classes(discount.discount_classes()),
            profile: crate::facts::profile(
                customer.map(|c| c.metafield().map(|m| m.value().as_str())),
            ),
            customer: ::marginwise_engine::CustomerFacts {
                number_of_orders: customer.map(|c| i64::from(*c.number_of_orders())),
            },
            lines,
            delivery_groups,
            holdout_key,
            policy: crate::facts::policy(discount.metafield().map(|m| m.value().as_str())),
        }
    }};
}
pub(crate) use request_from_input;

/// The module has one export per target; a plain start of the module has nothing to do.
fn main() {
    log!("offers: invoke a target export");
}
