//! What the engine is asked: everything a Function knows about one checkout, already translated
//! out of Shopify's types into plain values.

use crate::format::{Profile, VariantData};
use crate::money::{Currency, Money, Rate};
use crate::policy::PolicySource;

/// Which Function target is asking. Both targets evaluate the same policy on the same facts, so
/// they pick the same winning offer; each renders only the operations it may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `cart.lines.discounts.generate.run`: product and order discounts.
    CartLines,
    /// `cart.delivery-options.discounts.generate.run`: shipping discounts.
    DeliveryOptions,
}

/// Discount classes the discount node allows (`discount.discountClasses`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiscountClasses {
    pub product: bool,
    pub order: bool,
    pub shipping: bool,
}

/// What the Function could read of the customer's profile metafield.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileInput {
    /// No customer is logged in.
    Anonymous,
    /// A known customer whose profile metafield is absent (new customer, opted out, not scored yet).
    Missing,
    /// The metafield was present but unreadable; the text says which field.
    Malformed(String),
    /// A readable profile.
    Known(Profile),
}

/// The customer facts Shopify itself provides.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomerFacts {
    /// `numberOfOrders`; `None` for an anonymous shopper.
    pub number_of_orders: Option<i64>,
}

/// What the Function could read of a line's `$app.offer` variant metafield.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariantInput {
    /// Not a product variant (custom product) or no metafield: cost and product unknown.
    Missing,
    /// Present but unreadable; the text says which field.
    Malformed(String),
    /// Readable per-variant data (unit cost still in the shop currency).
    Known(VariantData),
}

/// One cart line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The cart line's GID, used as the discount target.
    pub id: String,
    pub quantity: i64,
    /// Unit price before discounts, presentment currency minor units.
    pub unit_price_minor: Money,
    pub variant: VariantInput,
}

/// One delivery group and the cost of the option the buyer chose (or the cheapest offered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryGroup {
    pub id: String,
    /// Presentment currency minor units; `None` when no option is known yet.
    pub shipping_cost_minor: Option<Money>,
}

/// Everything the engine needs for one decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub target: Target,
    /// The presentment (cart) currency.
    pub currency: Currency,
    /// Shop currency to presentment currency (`presentmentCurrencyRate`).
    pub rate: Rate,
    pub classes: DiscountClasses,
    pub profile: ProfileInput,
    pub customer: CustomerFacts,
    pub lines: Vec<Line>,
    pub delivery_groups: Vec<DeliveryGroup>,
    /// Stable key for the holdout: the customer GID, else the smallest cart line id.
    pub holdout_key: String,
    pub policy: PolicySource,
}
