//! The bundles Function's input (`bundles/cart_transform_run.graphql`).

use marginwise_engine::bundle::{BundleLine, BundleRequest};
use marginwise_engine::{PolicySource, VariantInput};
use shopify_function::wasm_api::{Deserialize, InternedStringId, Value, read::Error};

use crate::value::{customer, integer, text};

/// The response keys of each cart line: short aliases in the query (see the crate docs).
pub mod line_key {
    /// `id`, and the variant's `id` under `MERCHANDISE`.
    pub const ID: &str = "i";
    /// `quantity`
    pub const QUANTITY: &str = "q";
    /// `attribute(key: "_mw_bundle")`, then its `value` (`VALUE`).
    pub const MARKER: &str = "t";
    /// `cost`, then `amountPerQuantity` (`UNIT`), then `amount` and `currencyCode` (`CURRENCY`).
    pub const COST: &str = "c";
    pub const UNIT: &str = "u";
    pub const AMOUNT: &str = "a";
    pub const CURRENCY: &str = "k";
    /// `merchandise`, then `... on ProductVariant { id, metafield(namespace: "$app",
    /// key: "offer") }` (`OFFER`), then its `value`.
    pub const MERCHANDISE: &str = "m";
    pub const OFFER: &str = "o";
    pub const VALUE: &str = "v";
}

/// Every path the reader reads, as response keys from the root (checked against the query file by
/// the tests).
pub const READ_PATHS: &[&[&str]] = &[
    &["cartTransform", "bundles", "value"],
    &["cartTransform", "policy", "value"],
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

/// The per-line keys, interned once per run.
struct LineKeys {
    id: InternedStringId,
    quantity: InternedStringId,
    marker: InternedStringId,
    cost: InternedStringId,
    unit: InternedStringId,
    amount: InternedStringId,
    merchandise: InternedStringId,
    offer: InternedStringId,
    value: InternedStringId,
}

impl LineKeys {
    fn intern(value: &Value) -> Self {
        let intern = |key: &str| value.intern_utf8_str(key);
        Self {
            id: intern(line_key::ID),
            quantity: intern(line_key::QUANTITY),
            marker: intern(line_key::MARKER),
            cost: intern(line_key::COST),
            unit: intern(line_key::UNIT),
            amount: intern(line_key::AMOUNT),
            merchandise: intern(line_key::MERCHANDISE),
            offer: intern(line_key::OFFER),
            value: intern(line_key::VALUE),
        }
    }

    /// One line, and the value of its `amountPerQuantity` (where the currency is).
    fn line(&self, line: &Value) -> (BundleLine, Value) {
        let unit = line
            .get_interned_obj_prop(self.cost)
            .get_interned_obj_prop(self.unit);
        let merchandise = line.get_interned_obj_prop(self.merchandise);
        let offer = merchandise
            .get_interned_obj_prop(self.offer)
            .get_interned_obj_prop(self.value);
        let read = BundleLine {
            id: text(&line.get_interned_obj_prop(self.id)).unwrap_or_default(),
            // Unreadable quantities and prices read as 0 and "": the engine leaves the line alone
            // with a reason.
            quantity: integer(&line.get_interned_obj_prop(self.quantity)).unwrap_or(0),
            unit_price: text(&unit.get_interned_obj_prop(self.amount)).unwrap_or_default(),
            variant_id: text(&merchandise.get_interned_obj_prop(self.id)),
            variant: text(&offer).map_or(VariantInput::Missing, VariantInput::Text),
            marker: text(
                &line
                    .get_interned_obj_prop(self.marker)
                    .get_interned_obj_prop(self.value),
            ),
        };
        (read, unit)
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
        let keys = LineKeys::intern(root);
        for index in 0..count {
            let (line, unit) = keys.line(&lines_value.get_at_index(index));
            if index == 0 {
                currency_code = text(&unit.get_obj_prop(line_key::CURRENCY)).unwrap_or_default();
            }
            lines.push(line);
        }
    }

    BundleRequest {
        holdout_key: marginwise_engine::holdout::shopper_key(
            customer.id.as_deref(),
            lines.iter().map(|line| line.id.as_str()),
        ),
        currency_code,
        presentment_rate: text(&root.get_obj_prop("presentmentCurrencyRate")).unwrap_or_default(),
        profile: customer.profile,
        customer: customer.facts,
        lines,
        definitions: text(&transform.get_obj_prop("bundles").get_obj_prop("value")),
        policy: text(&transform.get_obj_prop("policy").get_obj_prop("value"))
            .map_or(PolicySource::Missing, PolicySource::Json),
    }
}
