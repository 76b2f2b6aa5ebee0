//! The merchant's policy: versioned JSON stored in the discount node's `$app.policy` metafield.
//!
//! Format, version 1. Money is integer minor units of `currency`, the shop's currency (the engine
//! converts it to the cart's currency); rates are basis points (10000 = 100 %). Only `version`,
//! `currency`, `offers` and, per offer, `id`, `reward` and `message` are required; `null` means
//! the same as an absent key. Unknown keys are errors, and so are keys given twice in one object,
//! so a misspelt or repeated guard field can never silently turn the guard off.
//!
//! ```json
//! {
//!   "version": 1,
//!   "currency": "USD",
//!   "strategy": "priority",
//!   "guard": {
//!     "min_line_margin_bps": 1000,
//!     "min_order_margin_bps": 1500,
//!     "assumed_stack_bps": 500,
//!     "unknown_cost": "exclude"
//!   },
//!   "holdout": { "share_bps": 1000, "salt": "2026-q4" },
//!   "offers": [
//!     {
//!       "id": "vip-10",
//!       "eligibility": {
//!         "segments": ["loyal_high_value"],
//!         "clv_min": 20000,
//!         "clv_max": null,
//!         "subtotal_min": 5000,
//!         "customer": "returning"
//!       },
//!       "reward": { "kind": "order_percent", "bps": 1000 },
//!       "cap": 5000,
//!       "message": "10% off for our best customers"
//!     }
//!   ]
//! }
//! ```
//!
//! | field | meaning (default) |
//! |---|---|
//! | `version` | must be `1`; anything else is `policy_unsupported_version` |
//! | `currency` | ISO 4217 code of the shop currency all policy money is in |
//! | `strategy` | `priority` (first surviving offer wins, the default) or `best_for_shopper` (largest value wins, ties by order) |
//! | `guard.min_line_margin_bps` | no discounted line ends below cost x (1 + this) (0; at most 100000) |
//! | `guard.min_order_margin_bps` | the discountable lines together keep cost x (1 + this) (0; at most 100000) |
//! | `guard.assumed_stack_bps` | share of each price other combinable discounts may also take (0; 0..=10000) |
//! | `guard.unknown_cost` | `exclude`: lines without a known cost get nothing and are excluded from order discounts (default); `allow`: treat their cost as 0 |
//! | `holdout.share_bps` | share of shoppers who never get an offer, for measuring lift (0..=10000) |
//! | `holdout.salt` | mixed into the holdout hash; change it to draw a new holdout group ("") |
//! | `offers` | at most 24 ([`MAX_OFFERS`]), evaluated in order; more are `too_many_offers` and not read |
//! | `offers[].id` | 1-64 characters of `A-Z a-z 0-9 - _ . :`, unique |
//! | `offers[].eligibility.segments` | profile segments allowed (`new`, `active`, `loyal_high_value`, `at_risk`, `lapsed`); empty or absent: anyone, with or without a profile |
//! | `offers[].eligibility.clv_min` / `clv_max` | inclusive bounds on the profile's predicted 12-month value; either one requires a profile |
//! | `offers[].eligibility.churn_min_bps` | the profile's churn risk must be at least this; requires a profile |
//! | `offers[].eligibility.subtotal_min` | the cart subtotal must be at least this |
//! | `offers[].eligibility.customer` | `any` (default), `new` (no previous order, or anonymous) or `returning` |
//! | `offers[].reward` | `{"kind": K, ...}`, see below |
//! | `offers[].cap` | the most this offer may give on one order, all discounts together (no cap) |
//! | `offers[].message` | the text the shopper sees, 1-100 characters |
//!
//! Reward kinds: `order_percent {bps}`, `order_fixed {amount}`, `lines_percent {bps}` (every
//! discountable line), `lines_fixed {amount}` (per unit), `shipping_percent {bps}`,
//! `free_shipping {}`, `slot_percent {bps, max_slots}` (one unit of up to `max_slots` lines whose
//! product is a complement of another product in the cart). `bps` is 0..=10000, `amount` is
//! non-negative, `max_slots` at least 1.
//!
//! Parsing never fails as a whole when the document is readable: a malformed offer is skipped with
//! an `offer_malformed` reason whose subject is its JSON path (`offers[2].reward.bps`), and the rest
//! of the policy still applies. A malformed top-level field (strategy, guard, holdout) rejects the
//! whole policy instead: falling back to a default guard would give away margin the merchant chose
//! to keep.
//!
//! The same policy may also be stored compiled beside the JSON (`$app.policy_compiled`, written by
//! `marginwise compile-policy`): the discount Function reads that instead when it was compiled from
//! exactly this JSON text. See [`compiled`].

pub mod compiled;
pub(crate) mod json;
pub(crate) mod parse;
pub(crate) mod syntax;

pub use parse::{POLICY_VERSION, parse};

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
    /// The JSON text and the `$app.policy_compiled` value beside it (see [`compiled`]): the
    /// compiled form is used when it was compiled from exactly this JSON, the JSON otherwise.
    Compiled { json: String, compiled: String },
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

impl Holdout {
    /// The holdout a policy applies: none when it has none or its share is 0 (a zero share holds
    /// no one out, whatever its salt). The gate and the pipeline's checks that two policies hold
    /// out the same shoppers both go by this.
    pub fn applied(holdout: Option<&Holdout>) -> Option<&Holdout> {
        holdout.filter(|h| h.share_bps > 0)
    }
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

impl Reward {
    /// The discount class this reward's discounts belong to: line and slot rewards are product
    /// discounts, order rewards order discounts, shipping rewards shipping discounts.
    pub fn class(&self) -> crate::request::DiscountClass {
        use crate::request::DiscountClass;
        match self {
            Reward::LinesPercent { .. }
            | Reward::LinesFixed { .. }
            | Reward::SlotPercent { .. } => DiscountClass::Product,
            Reward::OrderPercent { .. } | Reward::OrderFixed { .. } => DiscountClass::Order,
            Reward::ShippingPercent { .. } | Reward::FreeShipping => DiscountClass::Shipping,
        }
    }
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

/// Longest offer id accepted, in bytes. Ids appear in every Function log line, which is short.
pub const MAX_OFFER_ID_BYTES: usize = 64;

/// Most offers a policy may have; the Function reads the first ones and reports the rest with
/// `too_many_offers`. Every offer is evaluated on every run: 24 uncapped line offers on a
/// 200-line cart take 4.6 M of the 11 M instructions (measured with `mw-run`), where 113 (what
/// fits in a 10,000-byte metafield) took 17.9 M, and Shopify would have dropped the run.
pub const MAX_OFFERS: usize = 24;

/// Longest shopper-facing message accepted, in characters.
pub const MAX_MESSAGE_CHARS: usize = 100;

/// Largest margin over cost a guard may demand (1000 %): beyond that a typo is likelier than intent.
pub const MAX_SURCHARGE_MARGIN_BPS: Bps = 100_000;

/// Whether `id` can be an offer id: 1 to [`MAX_OFFER_ID_BYTES`] bytes of `A-Z a-z 0-9 - _ . :`.
pub(crate) fn is_offer_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_OFFER_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Whether `message` can be shown to the shopper: not blank, at most [`MAX_MESSAGE_CHARS`]
/// characters (counted only when the bytes alone do not settle it).
pub(crate) fn is_offer_message(message: &str) -> bool {
    // A printable ASCII first byte settles "not blank" without decoding characters.
    let blank = match message.as_bytes().first() {
        Some(&first) if first.is_ascii_graphic() => false,
        _ => message.trim().is_empty(),
    };
    !blank && (message.len() <= MAX_MESSAGE_CHARS || message.chars().count() <= MAX_MESSAGE_CHARS)
}

impl Guard {
    /// The guard of a policy without a `guard` object: keep cost, assume no stacking, exclude
    /// lines of unknown cost.
    pub const DEFAULT: Guard = Guard {
        min_line_margin_bps: 0,
        min_order_margin_bps: 0,
        assumed_stack_bps: 0,
        unknown_cost: UnknownCost::Exclude,
    };
}

impl Default for Guard {
    fn default() -> Self {
        Guard::DEFAULT
    }
}

impl Eligibility {
    /// No condition at all: every shopper and cart.
    pub const ANY: Eligibility = Eligibility {
        segments: Vec::new(),
        clv_min: None,
        clv_max: None,
        churn_min_bps: None,
        subtotal_min: None,
        customer: CustomerType::Any,
    };
}

impl Reward {
    /// The stable snake_case kind used in the policy JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Reward::OrderPercent { .. } => "order_percent",
            Reward::OrderFixed { .. } => "order_fixed",
            Reward::LinesPercent { .. } => "lines_percent",
            Reward::LinesFixed { .. } => "lines_fixed",
            Reward::ShippingPercent { .. } => "shipping_percent",
            Reward::FreeShipping => "free_shipping",
            Reward::SlotPercent { .. } => "slot_percent",
        }
    }
}
