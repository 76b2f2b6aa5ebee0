//! Copies Shopify's input values into the engine's plain request types, and renders engine amounts
//! back into Shopify's decimal strings. Nothing here decides anything: values are copied as raw
//! text and every parse that can fail happens in the engine, which reports it as a reason.

use marginwise_engine::{
    CustomerFacts, DeliveryGroup, DiscountClasses, Line, PolicySource, ProfileInput, Request,
    Target, VariantInput,
};

use crate::Input;
use crate::schema::DiscountClass;
use crate::schema::cart_lines_discounts_generate_run::input::cart::lines::Merchandise;

/// Builds the engine request from either target's input. One function for both targets, so both
/// build identical requests (apart from `target`) by construction.
pub fn request(input: &Input, target: Target) -> Request {
    let discount = input.discount();
    let cart = input.cart();
    let currency_code = cart.cost().total_amount().currency_code().clone();
    let lines: Vec<Line> = cart
        .lines()
        .iter()
        .map(|cart_line| {
            let variant_offer = match cart_line.merchandise() {
                Merchandise::ProductVariant(variant) => {
                    variant.metafield().map(|m| m.value().as_str())
                }
                _ => None,
            };
            line(
                cart_line.id(),
                cart_line.quantity(),
                cart_line.cost().amount_per_quantity().amount(),
                variant_offer,
            )
        })
        .collect();
    let delivery_groups = cart
        .delivery_groups()
        .iter()
        .map(|group| {
            let selected = group
                .selected_delivery_option()
                .map(|option| option.cost().amount().as_str());
            // The engine looks at the offered options only when none is selected; input reads are
            // lazy and each costs hundreds of instructions, so the options are not read otherwise.
            let offered: Vec<&str> = match selected {
                Some(_) => Vec::new(),
                None => group
                    .delivery_options()
                    .iter()
                    .map(|option| option.cost().amount().as_str())
                    .collect(),
            };
            delivery_group(group.id(), selected, offered.into_iter())
        })
        .collect();
    let customer = cart.buyer_identity().and_then(|buyer| buyer.customer());
    Request {
        target,
        holdout_key: marginwise_engine::holdout::shopper_key(
            customer.map(|c| c.id().as_str()),
            lines.iter().map(|line| line.id.as_str()),
        ),
        currency_code,
        presentment_rate: input.presentment_currency_rate().clone(),
        classes: classes(discount.discount_classes()),
        profile: profile(customer.map(|c| c.metafield().map(|m| m.value().as_str()))),
        customer: CustomerFacts {
            number_of_orders: customer.map(|c| i64::from(*c.number_of_orders())),
        },
        lines,
        delivery_groups,
        policy: policy(discount.metafield().map(|m| m.value().as_str())),
    }
}

/// One cart line, exactly as Shopify sent it.
fn line(id: &str, quantity: &i32, unit_price: &str, variant_offer: Option<&str>) -> Line {
    Line {
        id: id.to_string(),
        quantity: i64::from(*quantity),
        unit_price: unit_price.to_string(),
        variant: variant_offer.map_or(VariantInput::Missing, |text| {
            VariantInput::Text(text.to_string())
        }),
    }
}

/// One delivery group, exactly as Shopify sent it: the selected option's cost and every offered
/// option's cost (the engine decides which one a discount is priced against).
fn delivery_group<'a>(
    id: &str,
    selected_cost: Option<&'a str>,
    option_costs: impl Iterator<Item = &'a str>,
) -> DeliveryGroup {
    DeliveryGroup {
        id: id.to_string(),
        shipping_cost: selected_cost.map(str::to_string),
        option_costs: option_costs.map(str::to_string).collect(),
    }
}

/// The discount classes the discount node allows.
fn classes(discount_classes: &[DiscountClass]) -> DiscountClasses {
    let mut classes = DiscountClasses::default();
    for class in discount_classes {
        match class {
            DiscountClass::Product => classes.product = true,
            DiscountClass::Order => classes.order = true,
            DiscountClass::Shipping => classes.shipping = true,
            // A class added to the API after this build: we cannot render it, so we ignore it.
            DiscountClass::Other => {}
        }
    }
    classes
}

/// `customer` is `None` for an anonymous shopper, `Some(None)` for a customer without a profile.
fn profile(customer: Option<Option<&str>>) -> ProfileInput {
    match customer {
        None => ProfileInput::Anonymous,
        Some(None) => ProfileInput::Missing,
        Some(Some(text)) => ProfileInput::Text(text.to_string()),
    }
}

fn policy(metafield: Option<&str>) -> PolicySource {
    metafield.map_or(PolicySource::Missing, |text| {
        PolicySource::Json(text.to_string())
    })
}

/// Minor units of the cart currency as Shopify's decimal text, or `None` when the currency is
/// unknown (then nothing is rendered: the engine gives no offer in an unknown currency).
pub fn amount(minor: marginwise_engine::Money, currency_code: &str) -> Option<String> {
    let currency = marginwise_engine::Currency::from_code(currency_code)?;
    Some(marginwise_engine::money::format_decimal_minor(
        minor,
        currency.exponent,
    ))
}

/// Basis points as a percentage with two decimals (10_000 bps -> "100.00").
pub fn percent(bps: marginwise_engine::Bps) -> String {
    marginwise_engine::money::format_decimal_minor(bps, 2)
}

/// Writes the decision's one-line summary to the Function log (Shopify keeps the first 1,000
/// bytes). The line goes straight to the log API: `log!` would format it a second time.
pub fn log(decision: &marginwise_engine::Decision) {
    let mut line = decision.log_line();
    line.push('\n');
    shopify_function::wasm_api::Context.log(&line);
}
