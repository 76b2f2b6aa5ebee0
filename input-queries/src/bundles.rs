//! The bundles Function's input (`bundles/cart_transform_run.graphql`).

use marginwise_engine::bundle::{BundleLine, BundleRequest};
use shopify_function::wasm_api::{Deserialize, Value, read::Error};

use crate::line::{Layout, LineReader, Part, line_key};
use crate::value::{customer, policy_source, text};

/// Every path the reader reads, as response keys from the root (checked against the query file by
/// the tests).
pub const READ_PATHS: &[&[&str]] = &[
    &["cartTransform", "bundles", "value"],
    &["cartTransform", "policy", "value"],
    &["cartTransform", "compiled", "value"],
    &["presentmentCurrencyRate"],
    &["cart", "buyerIdentity", "customer", "id"],
    &["cart", "buyerIdentity", "customer", "numberOfOrders"],
    &["cart", "buyerIdentity", "customer", "metafield", "value"],
    &["cart", "lines", line_key::ID],
    &["cart", "lines", line_key::QUANTITY],
    &["cart", "lines", line_key::MARKER, line_key::VALUE],
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
        line_key::COST,
        line_key::UNIT,
        line_key::CURRENCY,
    ],
    &["cart", "lines", line_key::MERCHANDISE, line_key::ID],
    &[
        "cart",
        "lines",
        line_key::MERCHANDISE,
        line_key::OFFER,
        line_key::VALUE,
    ],
];

/// The per-line keys of the query, in its order (see [`Layout`]).
pub const LAYOUT: Layout = Layout {
    line: &[
        line_key::ID,
        line_key::QUANTITY,
        line_key::MARKER,
        line_key::COST,
        line_key::MERCHANDISE,
    ],
    unit: &[line_key::AMOUNT, line_key::CURRENCY],
    merchandise: &[line_key::ID, line_key::OFFER],
};

/// The cart transform's input, read into an engine request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundlesInput {
    request: BundleRequest,
}

impl BundlesInput {
    pub fn request(self) -> BundleRequest {
        self.request
    }
}

impl Deserialize for BundlesInput {
    /// Never fails: see the crate docs.
    fn deserialize(root: &Value) -> Result<Self, Error> {
        Ok(Self {
            request: read(root),
        })
    }
}

fn read(root: &Value) -> BundleRequest {
    let transform = root.get_obj_prop("cartTransform");
    let cart = root.get_obj_prop("cart");
    let customer = customer(&cart);

    let lines_value = cart.get_obj_prop("lines");
    let count = lines_value.array_len().unwrap_or(0);
    let mut lines = Vec::with_capacity(count);
    // The cart transform's Cart has no total: every line is priced in the presentment currency, so
    // the first line names it (an empty cart has nothing to transform anyway).
    let mut currency_code = String::new();
    if count > 0 {
        let reader = LineReader::new(root, &LAYOUT, &lines_value, count);
        let marker = reader.extra(root, Part::Line, line_key::MARKER);
        let variant_id = reader.extra(root, Part::Merchandise, line_key::ID);
        for index in 0..count {
            let value = lines_value.get_at_index(index);
            let line = reader.read(&value);
            if index == 0 {
                let currency = reader.extra(root, Part::Unit, line_key::CURRENCY);
                currency_code = text(&reader.field(&line.unit, currency)).unwrap_or_default();
            }
            lines.push(BundleLine {
                id: line.id,
                quantity: line.quantity,
                unit_price: line.unit_price,
                variant_id: text(&reader.field(&line.merchandise, variant_id)),
                variant: line.variant,
                marker: text(&reader.field(&reader.field(&value, marker), reader.value())),
            });
        }
    }

    BundleRequest {
        holdout_key: marginwise_engine::holdout::shopper_key(customer.id.as_deref()),
        currency_code,
        presentment_rate: text(&root.get_obj_prop("presentmentCurrencyRate")).unwrap_or_default(),
        profile: customer.profile,
        customer: customer.facts,
        lines,
        definitions: text(&transform.get_obj_prop("bundles").get_obj_prop("value")),
        policy: policy_source(&transform, "policy"),
    }
}
