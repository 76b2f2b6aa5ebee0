//! The cart line fields both Functions read, under the same short aliases in both queries.

use marginwise_engine::VariantInput;
use shopify_function::wasm_api::{InternedStringId, Value};

use crate::value::{integer, text};

/// The response keys of each cart line: short aliases in the queries, because the provider
/// compares a wanted key with every key before it (see the crate docs).
pub mod line_key {
    /// `id`, and in the cart transform also the variant's `id` under `MERCHANDISE`.
    pub const ID: &str = "i";
    /// `quantity`
    pub const QUANTITY: &str = "q";
    /// `cost`, then `amountPerQuantity` (`UNIT`), then `amount` (and in the cart transform
    /// `currencyCode`, `CURRENCY`).
    pub const COST: &str = "c";
    pub const UNIT: &str = "u";
    pub const AMOUNT: &str = "a";
    pub const CURRENCY: &str = "k";
    /// `merchandise`, then `... on ProductVariant { metafield(namespace: "$app", key: "offer") }`
    /// (`OFFER`), then its `value`.
    pub const MERCHANDISE: &str = "m";
    pub const OFFER: &str = "o";
    pub const VALUE: &str = "v";
    /// Cart transform only: `attribute(key: "_mw_bundle")`, then its `value` (`VALUE`).
    pub const MARKER: &str = "t";
}

/// The keys every line is read with, interned once per run.
pub(crate) struct LineKeys {
    pub id: InternedStringId,
    quantity: InternedStringId,
    cost: InternedStringId,
    unit: InternedStringId,
    amount: InternedStringId,
    merchandise: InternedStringId,
    offer: InternedStringId,
    pub value: InternedStringId,
}

/// What both Functions read of one line.
pub(crate) struct CommonLine {
    pub id: String,
    pub quantity: i64,
    pub unit_price: String,
    pub variant: VariantInput,
    /// The line's `amountPerQuantity` and `merchandise` values, for the fields only one Function
    /// reads.
    pub unit: Value,
    pub merchandise: Value,
}

impl LineKeys {
    pub(crate) fn intern(value: &Value) -> Self {
        let intern = |key: &str| value.intern_utf8_str(key);
        Self {
            id: intern(line_key::ID),
            quantity: intern(line_key::QUANTITY),
            cost: intern(line_key::COST),
            unit: intern(line_key::UNIT),
            amount: intern(line_key::AMOUNT),
            merchandise: intern(line_key::MERCHANDISE),
            offer: intern(line_key::OFFER),
            value: intern(line_key::VALUE),
        }
    }

    pub(crate) fn read(&self, line: &Value) -> CommonLine {
        let unit = line
            .get_interned_obj_prop(self.cost)
            .get_interned_obj_prop(self.unit);
        // The price is read before moving on to `merchandise`: read later it costs about 45
        // instructions more per line (measured).
        let unit_price = text(&unit.get_interned_obj_prop(self.amount)).unwrap_or_default();
        let merchandise = line.get_interned_obj_prop(self.merchandise);
        let offer = merchandise
            .get_interned_obj_prop(self.offer)
            .get_interned_obj_prop(self.value);
        CommonLine {
            id: text(&line.get_interned_obj_prop(self.id)).unwrap_or_default(),
            // Unreadable quantities and prices read as 0 and "": the engine leaves the line out
            // with a reason.
            quantity: integer(&line.get_interned_obj_prop(self.quantity)).unwrap_or(0),
            unit_price,
            variant: text(&offer).map_or(VariantInput::Missing, VariantInput::Text),
            unit,
            merchandise,
        }
    }
}
