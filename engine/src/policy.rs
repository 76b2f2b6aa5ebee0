//! The merchant's policy: versioned JSON stored in the discount node's `$app.policy` metafield.
//!
//! Format (version 1; money is integer minor units of `currency`, the shop's currency; rates are
//! basis points):
//!
//! ```json
//! {
//!   "version": 1,
//!   "currency": "USD",
//!   "strategy": "priority",                    // or "best_for_shopper"
//!   "guard": {
//!     "min_line_margin_bps": 1000,             // no line ends below cost x (1 + 10 %)
//!     "min_order_margin_bps": 1500,            // the order keeps cost x (1 + 15 %)
//!     "assumed_stack_bps": 500,                // other combinable discounts may take 5 % more
//!     "unknown_cost": "exclude"                // or "allow"
//!   },
//!   "holdout": { "share_bps": 1000, "salt": "2026-q4" },
//!   "offers": [
//!     {
//!       "id": "vip-10",
//!       "eligibility": {
//!         "segments": ["loyal_high_value"],    // absent or empty: any segment
//!         "clv_min": 20000, "clv_max": null,   // shop currency minor units
//!         "churn_min_bps": 0,
//!         "subtotal_min": 5000,
//!         "customer": "any"                    // "new" | "returning" | "any"
//!       },
//!       "reward": { "kind": "order_percent", "bps": 1000 },
//!       "cap": 5000,                           // most this offer may give on one order
//!       "message": "10% off for our best customers"
//!     }
//!   ]
//! }
//! ```
//!
//! Reward kinds: `order_percent {bps}`, `order_fixed {amount}`, `lines_percent {bps}`,
//! `lines_fixed {amount}` (per unit), `shipping_percent {bps}`, `free_shipping {}`,
//! `slot_percent {bps, max_slots}` (a complement line whose anchor product is in the cart).
//!
//! Parsing never fails as a whole when the document is readable: a malformed offer is skipped with
//! a reason naming its JSON path, and the rest of the policy still applies.

use crate::decision::Reason;
use crate::format::Segment;
use crate::money::{Bps, Currency, Money};

/// The policy as the Function found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// The discount has no `$app.policy` metafield.
    Missing,
    /// The metafield's raw JSON text.
    Json(String),
}

/// How the winning offer is chosen among the eligible ones that pass the guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The first offer in the merchant's order.
    Priority,
    /// The offer worth the most to the shopper (after guard and cap), ties by merchant order.
    BestForShopper,
}

/// What to do with lines whose unit cost is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownCost {
    /// Never discount them and leave them out of order discounts (the default).
    Exclude,
    /// Discount them as if their cost were zero (the merchant accepts the risk).
    Allow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guard {
    pub min_line_margin_bps: Bps,
    pub min_order_margin_bps: Bps,
    pub assumed_stack_bps: Bps,
    pub unknown_cost: UnknownCost,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holdout {
    pub share_bps: Bps,
    pub salt: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerType {
    Any,
    New,
    Returning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eligibility {
    /// Empty: every segment (and shoppers without a profile).
    pub segments: Vec<Segment>,
    pub clv_min: Option<Money>,
    pub clv_max: Option<Money>,
    pub churn_min_bps: Option<Bps>,
    pub subtotal_min: Option<Money>,
    pub customer: CustomerType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reward {
    OrderPercent { bps: Bps },
    OrderFixed { amount: Money },
    LinesPercent { bps: Bps },
    LinesFixed { amount_per_unit: Money },
    ShippingPercent { bps: Bps },
    FreeShipping,
    SlotPercent { bps: Bps, max_slots: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub id: String,
    pub eligibility: Eligibility,
    pub reward: Reward,
    /// Most this offer may give on one order, shop currency minor units.
    pub cap: Option<Money>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub currency: Currency,
    pub strategy: Strategy,
    pub guard: Guard,
    pub holdout: Option<Holdout>,
    pub offers: Vec<Offer>,
}

/// A parsed policy with the reasons for anything skipped, or why there is no usable policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPolicy {
    pub policy: Option<Policy>,
    pub reasons: Vec<Reason>,
}
