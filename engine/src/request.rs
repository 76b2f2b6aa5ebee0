//! What the engine is asked: everything a Function knows about one checkout, copied out of
//! Shopify's types as plain values.
//!
//! Money, rates and metafields arrive as the raw text Shopify sent. The engine, not the Function,
//! parses and validates them: the shop currency needed to read unit costs is only known once the
//! policy is parsed, and keeping every parse in one place means every malformed value is reported
//! the same way, as a reason, instead of each Function inventing its own fallback.

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

impl DiscountClasses {
    /// Whether the node allows discounts of `class`.
    pub fn allows(self, class: DiscountClass) -> bool {
        match class {
            DiscountClass::Product => self.product,
            DiscountClass::Order => self.order,
            DiscountClass::Shipping => self.shipping,
        }
    }
}

/// One discount class: the kind of discount an offer's reward produces, which the discount node
/// must allow (the eligibility check) and which `marginwise discount` asks for when it creates the
/// node ([`crate::policy::Reward::class`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DiscountClass {
    Product,
    Order,
    Shipping,
}

impl DiscountClass {
    /// The class as the reasons name it.
    pub fn name(self) -> &'static str {
        match self {
            DiscountClass::Product => "product",
            DiscountClass::Order => "order",
            DiscountClass::Shipping => "shipping",
        }
    }
}

/// What the Function could read of the customer's profile metafield.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileInput {
    /// No customer is logged in.
    Anonymous,
    /// A known customer whose profile metafield is absent (new customer, opted out, not scored yet).
    Missing,
    /// The raw `$app.profile` metafield value (see [`crate::format`]).
    Text(String),
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
    /// The raw `$app.offer` metafield value (see [`crate::format`]).
    Text(String),
}

/// One cart line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The cart line's GID, used as the discount target.
    pub id: String,
    pub quantity: i64,
    /// Unit price before discounts, decimal text in the presentment currency (`"19.99"`).
    pub unit_price: String,
    pub variant: VariantInput,
}

/// One delivery group: the cost of the option the buyer chose, and the costs of every option offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryGroup {
    pub id: String,
    /// Decimal text in the presentment currency: the selected option's cost, `None` when the buyer
    /// has not chosen one yet.
    pub shipping_cost: Option<String>,
    /// Decimal texts of every option offered. Used only when no option is selected: the engine then
    /// assumes the most expensive one, the worst case for margin.
    pub option_costs: Vec<String>,
}

/// Everything the engine needs for one decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub target: Target,
    /// The presentment (cart) currency's ISO code (`cart.cost.totalAmount.currencyCode`).
    pub currency_code: String,
    /// Shop currency to presentment currency, decimal text (`presentmentCurrencyRate`).
    pub presentment_rate: String,
    pub classes: DiscountClasses,
    pub profile: ProfileInput,
    pub customer: CustomerFacts,
    pub lines: Vec<Line>,
    pub delivery_groups: Vec<DeliveryGroup>,
    /// Key for the holdout: the customer GID, else empty (an anonymous shopper is never held out).
    pub holdout_key: String,
    pub policy: PolicySource,
}
