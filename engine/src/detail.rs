//! The detail of a [`Reason`](crate::Reason): the figures behind it, formatted only when read.
//!
//! A Function never reads a detail; it logs reason codes only. Building every detail as text while
//! deciding made the Function carry the formatting code of ~60 sentences (about a fifth of the
//! engine's wasm size) and pay for the allocations in every checkout. A [`Detail`] therefore holds
//! numbers, enum values and, where a detail quotes the merchant's or Shopify's input, that text;
//! its `Display` impl writes the sentence. Inside a Function nothing calls it, so the linker drops
//! the whole renderer; snapshots, the demo and the pipeline's reports read it through
//! [`Reason::detail_text`](crate::Reason::detail_text) or `{}`.
//!
//! The sentences are part of the snapshot contract: change one only together with the snapshots.

use std::fmt;

use crate::format::{FormatError, Segment};
use crate::money::{Bps, Currency, Money};
use crate::policy::{MAX_MESSAGE_CHARS, MAX_OFFER_ID_BYTES};
use crate::request::Target;

/// What a reason's detail says, as data. `Display` renders it as the readable sentence.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Detail {
    /// No detail (renders as nothing).
    #[default]
    None,
    /// A sentence built by the caller. The cart transform's bundle reasons still use it; the
    /// discount path does not, since every sentence it builds is code the Function carries.
    Text(String),
    /// A cart transform (bundles) reason's detail.
    Bundle(crate::bundle::BundleDetail),

    // The decision as a whole.
    /// The discount node has no policy metafield.
    NoPolicyMetafield,
    /// The policy text, which is not JSON. Where it fails is found only when the detail is
    /// rendered: the syntax checker that finds it is code a Function would otherwise carry.
    InvalidJson(String),
    /// The cart's currency code is not a currency.
    UnknownCartCurrency(String),
    /// The presentment rate is not a positive decimal.
    PresentmentRate(String),
    /// The cart has no lines.
    NoLines,
    /// An anonymous shopper: no key to split on, never held out (see `holdout::shopper_key`).
    NoHoldoutKey,
    /// The shopper's holdout bucket and the policy's share.
    Holdout {
        bucket: u32,
        share_bps: Bps,
    },
    /// No customer is logged in.
    Anonymous,
    /// A known customer without a profile metafield.
    NoProfileMetafield,
    /// The profile metafield could not be read.
    Profile(FormatError),
    /// No offer survived; how many the policy has.
    OffersConsidered(usize),
    /// An offer that survived, and what it is worth to the shopper (presentment minor units).
    Value(Money),
    /// The winner renders in the other target than the one that asked.
    RenderedByOtherTarget {
        asked: Target,
    },
    /// The margin summary overflowed.
    MarginSummaryOverflow,

    // One offer.
    /// An offer's computation overflowed during the named step; the offer is dropped.
    OverflowWhile(&'static str),
    /// Computing an offer's proposed discount overflowed.
    ProposalOverflow,
    /// The offer is worth nothing on this cart.
    WorthNothing,
    /// The cap lowered the offer's value (0 means dropped).
    CapReduced {
        before: Money,
        after: Money,
        cap: Money,
    },
    /// Line discounts left out so the output stays under Shopify's limit; `after` is what the
    /// offer is still worth.
    LinesOverOutputLimit {
        left_out: usize,
        after: Money,
        max_bytes: usize,
    },
    /// Delivery groups left out of a shipping discount so the output stays under Shopify's limit
    /// (one candidate per group).
    GroupsOverOutputLimit {
        left_out: usize,
        max_bytes: usize,
    },
    /// An order discount whose excluded lines cannot all be listed in the output; dropped, since
    /// without the list Shopify would discount those lines too.
    ExclusionsOverOutputLimit {
        excluded: usize,
        max_bytes: usize,
    },
    /// The margin guard lowered the offer's value.
    GuardReduced {
        before: Money,
        after: Money,
        order_headroom: Money,
    },
    /// A profile rule and no profile.
    NoProfile,
    /// The shopper's segment is not one the offer allows.
    Segment(Segment),
    ClvBelowMinimum {
        clv: Money,
        min: Money,
    },
    ClvAboveMaximum {
        clv: Money,
        max: Money,
    },
    ChurnBelowMinimum {
        churn_bps: Bps,
        min_bps: Bps,
    },
    /// The cart subtotal or the offer's minimum overflows.
    SubtotalOverflow,
    SubtotalBelowMinimum {
        subtotal: Money,
        min: Money,
    },
    /// A new-customers offer and a returning customer.
    ReturningCustomer,
    /// A returning-customers offer and a new customer.
    NewCustomer,
    /// The discount node does not allow the offer's class (`order`, `product` or `shipping`).
    ClassNotAllowed(&'static str),
    /// Nothing to discount: no line of known cost.
    NoLineWithKnownCost,
    /// Nothing to discount: no complement of another product in the cart.
    NoComplement,
    /// Nothing to discount: no delivery group of known cost.
    NoShippingCost,

    // One line or delivery group.
    /// A delivery group's shipping cost is not an amount of the cart currency.
    ShippingCostMalformed {
        text: String,
        currency: Currency,
    },
    /// A line's unit price is not an amount of the cart currency.
    UnitPriceMalformed {
        text: String,
        currency: Currency,
    },
    QuantityBelowOne(i64),
    /// A line's price overflows.
    LinePriceOverflow {
        unit_price: Money,
        quantity: i64,
    },
    /// A line's cost overflows (its cost is then unknown).
    LineCostOverflow {
        unit_cost: Money,
        quantity: i64,
    },
    /// The line has no variant metafield.
    NoVariantData,
    /// The variant metafield could not be read.
    VariantData(FormatError),
    /// The variant metafield has no cost.
    NoCost,
    /// A bundle parent would have been a recommendation slot.
    BundleParentNotSlot,

    // One policy field (the reason's subject is the field's JSON path).
    Missing,
    /// A key the object does not have, or one given twice.
    UnknownKey,
    /// A value of the wrong JSON type; `expected` and `found` are phrases like "an integer".
    ExpectedFound {
        expected: &'static str,
        found: &'static str,
    },
    IntegerOutOfRange,
    Below {
        value: i64,
        min: i64,
    },
    Above {
        value: i64,
        max: i64,
    },
    /// The document's version, and the one this build reads of that policy.
    UnsupportedVersion {
        version: i64,
        reads: i64,
    },
    /// A name the policy format does not define.
    UnknownName {
        kind: NameKind,
        name: String,
    },
    DuplicateOfferId(String),
    /// More offers than [`crate::policy::MAX_OFFERS`]: only the first ones are read.
    TooManyOffers {
        count: usize,
        max: usize,
    },
    OfferIdNotToken,
    MessageTooLong {
        n_chars: usize,
    },
    ClvBoundsInverted {
        min: Money,
        max: Money,
    },
    /// Why the discount's `$app.policy_compiled` was not used.
    CompiledPolicy(crate::policy::compiled::CompiledProblem),
    /// Why the cart transform's `$app.policy_compiled` was not used.
    CompiledBundlePolicy(crate::policy::compiled::CompiledProblem),
}

/// The kind of name in [`Detail::UnknownName`], which decides the sentence and the valid choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    CurrencyCode,
    Strategy,
    UnknownCost,
    Segment,
    CustomerType,
    RewardKind,
}

/// Where a policy text stops being JSON: 1-based line and column (in characters), and what the
/// checker expected there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonSyntaxError {
    pub line: usize,
    pub column: usize,
    pub what: &'static str,
}

impl From<String> for Detail {
    fn from(text: String) -> Detail {
        Detail::Text(text)
    }
}

impl From<&str> for Detail {
    fn from(text: &str) -> Detail {
        Detail::Text(text.to_string())
    }
}

impl Detail {
    /// Whether there is no detail to show.
    pub fn is_empty(&self) -> bool {
        matches!(self, Detail::None)
    }
}

impl fmt::Display for JsonSyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.what
        )
    }
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Detail::None => Ok(()),
            Detail::Text(text) => f.write_str(text),
            Detail::Bundle(detail) => write!(f, "{detail}"),
            Detail::NoPolicyMetafield => f.write_str("no policy metafield"),
            Detail::InvalidJson(text) => match crate::policy::syntax::find_error(text) {
                Some(error) => write!(f, "not valid JSON ({error})"),
                None => f.write_str("not valid JSON (syntax error)"),
            },
            Detail::UnknownCartCurrency(code) => write!(f, "unknown cart currency \"{code}\""),
            Detail::PresentmentRate(text) => write!(f, "presentment rate \"{text}\""),
            Detail::NoLines => f.write_str("no lines"),
            Detail::NoHoldoutKey => f.write_str("anonymous shopper, never held out"),
            Detail::Holdout { bucket, share_bps } => {
                write!(f, "bucket {bucket}, share {share_bps} bps")
            }
            Detail::Anonymous => f.write_str("anonymous"),
            Detail::NoProfileMetafield => f.write_str("no profile metafield"),
            Detail::Profile(error) => write!(f, "{error}"),
            Detail::OffersConsidered(n_offers) => write!(f, "{n_offers} offers considered"),
            Detail::Value(value) => write!(f, "value {value}"),
            Detail::RenderedByOtherTarget { asked } => f.write_str(match asked {
                Target::CartLines => "shipping discount, rendered by the delivery options target",
                Target::DeliveryOptions => {
                    "line or order discount, rendered by the cart lines target"
                }
            }),
            Detail::MarginSummaryOverflow => f.write_str("margin summary left at zero"),
            Detail::OverflowWhile(step) => write!(f, "while {step}; offer dropped"),
            Detail::ProposalOverflow => f.write_str("computing the proposed discount"),
            Detail::WorthNothing => f.write_str("the offer is worth 0 on this cart"),
            Detail::CapReduced { before, after, cap } => {
                let dropped = if *after == 0 { ", dropped" } else { "" };
                write!(f, "{before} -> {after} (cap {cap}){dropped}")
            }
            Detail::LinesOverOutputLimit {
                left_out,
                after,
                max_bytes,
            } => write!(
                f,
                "{left_out} line discounts left out to keep the operations under {max_bytes} bytes; value {after}"
            ),
            Detail::GroupsOverOutputLimit {
                left_out,
                max_bytes,
            } => write!(
                f,
                "{left_out} delivery groups left out to keep the operations under {max_bytes} bytes"
            ),
            Detail::ExclusionsOverOutputLimit {
                excluded,
                max_bytes,
            } => write!(
                f,
                "{excluded} excluded lines do not fit in {max_bytes} bytes of operations; dropped"
            ),
            Detail::GuardReduced {
                before,
                after,
                order_headroom,
            } => write!(f, "{before} -> {after} (order headroom {order_headroom})"),
            Detail::NoProfile => f.write_str("no profile"),
            Detail::Segment(segment) => write!(f, "segment {}", segment.code()),
            Detail::ClvBelowMinimum { clv, min } => write!(f, "clv {clv} below minimum {min}"),
            Detail::ClvAboveMaximum { clv, max } => write!(f, "clv {clv} above maximum {max}"),
            Detail::ChurnBelowMinimum { churn_bps, min_bps } => {
                write!(f, "churn {churn_bps} < {min_bps} bps")
            }
            Detail::SubtotalOverflow => f.write_str("the cart subtotal or its minimum overflows"),
            Detail::SubtotalBelowMinimum { subtotal, min } => {
                write!(f, "subtotal {subtotal} < {min}")
            }
            Detail::ReturningCustomer => f.write_str("returning customer"),
            Detail::NewCustomer => f.write_str("new customer"),
            Detail::ClassNotAllowed(class) => {
                write!(f, "{class} class not allowed by the discount")
            }
            Detail::NoLineWithKnownCost => f.write_str("no line with a known cost"),
            Detail::NoComplement => f.write_str("no complement of another cart product"),
            Detail::NoShippingCost => f.write_str("no delivery group with a known cost"),
            Detail::ShippingCostMalformed { text, currency } => write!(
                f,
                "shipping cost \"{text}\" is not a {} amount",
                currency.code_str()
            ),
            Detail::UnitPriceMalformed { text, currency } => write!(
                f,
                "unit price \"{text}\" is not a {} amount",
                currency.code_str()
            ),
            Detail::QuantityBelowOne(quantity) => write!(f, "quantity {quantity} is below 1"),
            Detail::LinePriceOverflow {
                unit_price,
                quantity,
            } => write!(f, "unit price {unit_price} x quantity {quantity}"),
            Detail::LineCostOverflow {
                unit_cost,
                quantity,
            } => write!(
                f,
                "unit cost {unit_cost} x quantity {quantity} (cost unknown)"
            ),
            Detail::NoVariantData => f.write_str("no variant data"),
            Detail::VariantData(error) => write!(f, "variant data: {error}"),
            Detail::NoCost => f.write_str("variant data has no cost"),
            Detail::BundleParentNotSlot => {
                f.write_str("bundle parent, never a recommendation slot")
            }
            Detail::Missing => f.write_str("missing"),
            Detail::UnknownKey => f.write_str("unknown or repeated key"),
            Detail::ExpectedFound { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            Detail::IntegerOutOfRange => f.write_str("integer out of range"),
            Detail::Below { value, min } => write!(f, "{value} is below {min}"),
            Detail::Above { value, max } => write!(f, "{value} is above {max}"),
            Detail::UnsupportedVersion { version, reads } => {
                write!(f, "version {version}, this build reads {reads}")
            }
            Detail::UnknownName { kind, name } => {
                let (what, choices) = match kind {
                    NameKind::CurrencyCode => ("currency code", ""),
                    NameKind::Strategy => ("strategy", " (priority | best_for_shopper)"),
                    NameKind::UnknownCost => ("value", " (exclude | allow)"),
                    NameKind::Segment => ("segment", ""),
                    NameKind::CustomerType => ("customer type", " (any | new | returning)"),
                    NameKind::RewardKind => (
                        "reward kind",
                        " (order_percent | order_fixed | lines_percent | lines_fixed | \
                         shipping_percent | free_shipping | slot_percent)",
                    ),
                };
                write!(f, "unknown {what} \"{name}\"{choices}")
            }
            Detail::DuplicateOfferId(id) => write!(f, "duplicate offer id \"{id}\""),
            Detail::TooManyOffers { count, max } => {
                write!(f, "{count} offers, only the first {max} are read")
            }
            Detail::OfferIdNotToken => write!(
                f,
                "offer id must be 1-{MAX_OFFER_ID_BYTES} characters of A-Z a-z 0-9 - _ . :"
            ),
            Detail::MessageTooLong { n_chars } => {
                write!(f, "{n_chars} characters, at most {MAX_MESSAGE_CHARS}")
            }
            Detail::ClvBoundsInverted { min, max } => write!(f, "clv_max {max} < clv_min {min}"),
            Detail::CompiledPolicy(problem) => compiled_problem(
                f,
                *problem,
                crate::policy::compiled::COMPILED_TAG,
                "compile-policy",
            ),
            Detail::CompiledBundlePolicy(problem) => compiled_problem(
                f,
                *problem,
                crate::bundle::compiled::BUNDLE_COMPILED_TAG,
                "compile-bundles",
            ),
        }
    }
}

/// Why a compiled policy (format `tag`, written by `marginwise <command>`) was not used.
fn compiled_problem(
    f: &mut fmt::Formatter<'_>,
    problem: crate::policy::compiled::CompiledProblem,
    tag: &str,
    command: &str,
) -> fmt::Result {
    use crate::policy::compiled::CompiledProblem;
    match problem {
        CompiledProblem::UnknownFormat => write!(
            f,
            "not a {tag} compiled policy; the policy JSON was read instead"
        ),
        CompiledProblem::JsonChanged => write!(
            f,
            "compiled from another policy JSON; the JSON was read instead \
             (compile it again: marginwise {command})"
        ),
        CompiledProblem::Malformed { at } => write!(
            f,
            "unreadable at byte {at}; the policy JSON was read instead"
        ),
    }
}
