//! The offers Function's input (`offers/*.graphql`; both targets select the same fields).

use marginwise_engine::{DeliveryGroup, DiscountClasses, Line, Request, Target};
use shopify_function::wasm_api::{Deserialize, Value, read::Error};

use crate::line::{Layout, LineReader, line_key};
use crate::value::{customer, policy_source, text};

/// Every path the reader reads, as response keys from the root (the tests compare them with the
/// query files: a key the query does not select reads as absent, and a selected field nobody reads
/// still costs instructions).
pub const READ_PATHS: &[&[&str]] = &[
    &["discount", "discountClasses"],
    &["discount", "metafield", "value"],
    &["discount", "compiled", "value"],
    &["presentmentCurrencyRate"],
    &["cart", "cost", "totalAmount", "currencyCode"],
    &["cart", "buyerIdentity", "customer", "id"],
    &["cart", "buyerIdentity", "customer", "numberOfOrders"],
    &["cart", "buyerIdentity", "customer", "metafield", "value"],
    &["cart", "lines", line_key::ID],
    &["cart", "lines", line_key::QUANTITY],
    &[
        "cart",
        "lines",
        line_key::COST,
        line_key::UNIT,
        line_key::AMOUNT,
    ],
    &[
        "cart",
        "lines",
        line_key::MERCHANDISE,
        line_key::OFFER,
        line_key::VALUE,
    ],
    &["cart", "deliveryGroups", "id"],
    &[
        "cart",
        "deliveryGroups",
        "selectedDeliveryOption",
        "cost",
        "amount",
    ],
    &[
        "cart",
        "deliveryGroups",
        "deliveryOptions",
        "cost",
        "amount",
    ],
];

/// The per-line keys of both offers queries, in their order (see [`Layout`]).
pub const LAYOUT: Layout = Layout {
    line: &[
        line_key::ID,
        line_key::QUANTITY,
        line_key::COST,
        line_key::MERCHANDISE,
    ],
    unit: &[line_key::AMOUNT],
    merchandise: &[line_key::OFFER],
};

/// The input of either offers target, read into an engine request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffersInput {
    request: Request,
}

impl OffersInput {
    /// The engine request for `target`. Both targets build the identical request apart from
    /// `target`, so both pick the same winning offer.
    pub fn request(self, target: Target) -> Request {
        Request {
            target,
            ..self.request
        }
    }
}

impl Deserialize for OffersInput {
    /// Never fails: see the crate docs.
    fn deserialize(root: &Value) -> Result<Self, Error> {
        Ok(Self {
            request: read(root),
        })
    }
}

fn read(root: &Value) -> Request {
    let discount = root.get_obj_prop("discount");
    let cart = root.get_obj_prop("cart");
    let customer = customer(&cart);

    let lines_value = cart.get_obj_prop("lines");
    let count = lines_value.array_len().unwrap_or(0);
    let mut lines = Vec::with_capacity(count);
    if count > 0 {
        let reader = LineReader::new(root, &LAYOUT, &lines_value, count);
        for index in 0..count {
            let line = reader.read(&lines_value.get_at_index(index));
            lines.push(Line {
                id: line.id,
                quantity: line.quantity,
                unit_price: line.unit_price,
                variant: line.variant,
            });
        }
    }

    Request {
        target: Target::CartLines,
        holdout_key: marginwise_engine::holdout::shopper_key(customer.id.as_deref()),
        currency_code: text(
            &cart
                .get_obj_prop("cost")
                .get_obj_prop("totalAmount")
                .get_obj_prop("currencyCode"),
        )
        .unwrap_or_default(),
        presentment_rate: text(&root.get_obj_prop("presentmentCurrencyRate")).unwrap_or_default(),
        classes: classes(&discount.get_obj_prop("discountClasses")),
        profile: customer.profile,
        customer: customer.facts,
        lines,
        delivery_groups: delivery_groups(&cart.get_obj_prop("deliveryGroups")),
        policy: policy_source(&discount, "metafield"),
    }
}

/// The discount classes the discount node allows. A class added to the API after this build
/// cannot be rendered, so it is ignored.
fn classes(list: &Value) -> DiscountClasses {
    let mut classes = DiscountClasses::default();
    for index in 0..list.array_len().unwrap_or(0) {
        match text(&list.get_at_index(index)).as_deref() {
            Some("PRODUCT") => classes.product = true,
            Some("ORDER") => classes.order = true,
            Some("SHIPPING") => classes.shipping = true,
            _ => {}
        }
    }
    classes
}

/// Each delivery group's selected cost, and the offered options' costs only when none is selected
/// (the engine looks at them only then, and every read costs instructions).
fn delivery_groups(list: &Value) -> Vec<DeliveryGroup> {
    let cost_amount = |option: &Value| text(&option.get_obj_prop("cost").get_obj_prop("amount"));
    (0..list.array_len().unwrap_or(0))
        .map(|index| {
            let group = list.get_at_index(index);
            let shipping_cost = cost_amount(&group.get_obj_prop("selectedDeliveryOption"));
            let option_costs = match shipping_cost {
                Some(_) => Vec::new(),
                None => {
                    let options = group.get_obj_prop("deliveryOptions");
                    (0..options.array_len().unwrap_or(0))
                        .filter_map(|option| cost_amount(&options.get_at_index(option)))
                        .collect()
                }
            };
            DeliveryGroup {
                id: text(&group.get_obj_prop("id")).unwrap_or_default(),
                shipping_cost,
                option_costs,
            }
        })
        .collect()
}
