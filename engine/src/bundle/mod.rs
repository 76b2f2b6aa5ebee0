//! Bundles: what the cart transform Function (`cart.transform.run`) asks the engine, and what it
//! answers.
//!
//! Two operations, decided from the bundle definitions (`$app.bundles`, see
//! [`crate::format::encode_bundles`]), the bundle policy ([`policy`]) and the shopper's profile:
//!
//! - **Merge.** When the cart holds every component of a bundle in whole lines (a group of `k`
//!   sets is one line per component holding exactly `k x quantity` units; a bundle takes every
//!   such group there is), those lines are merged into the parent variant with one percentage
//!   decrease. Merges take whole lines only: units left on a merged line would be free again when
//!   the transform runs on its own output, and Shopify has been reported to merge a line's whole
//!   quantity whatever quantity the operation names. A cart with spare units gets
//!   `bundle_uneven_quantities` instead. The decrease is the policy's
//!   value for this shopper, clamped by the discount engine's margin guard ([`crate::guard`]) with
//!   the components' unit costs from `$app.offer`: reduced (`guard_reduced`) or dropped
//!   (`guard_dropped`). One minor unit per merged set is kept back for Shopify's rounding of the
//!   percentage, as the order discount keeps one back per line.
//! - **Expand.** A line whose variant is a bundle parent, sold as one line, is expanded into its
//!   components with fixed per-unit prices that add up exactly to the parent's unit price
//!   ([`split`]). Expansion is not an offer: it needs no policy, happens in the holdout too, and
//!   never changes what the shopper pays.
//!
//! Safety rules, all enforced here and checked by property tests:
//! - at most one merge per parent per run (definitions have unique parents), and every line is in
//!   at most one operation (expansions are decided first; merges then use the remaining lines);
//! - when two complete bundles share a line, the one worth more to the shopper (the larger
//!   decrease in money) is merged, ties to the earlier definition; the other is priced again on
//!   the lines still free and merged if it is still complete, else it gets
//!   `bundle_component_shared`. Value first because the merchant already capped every bundle with
//!   the guard, so among safe choices the shopper's is the fairer tie-breaker. Selection runs in
//!   rounds until no bundle is complete on the free lines, which (with the whole-line groups) is
//!   what makes a re-run on the transformed cart find nothing new;
//! - idempotence: a merge marks its parent line and an expansion marks its component lines with
//!   the line attribute [`crate::format::BUNDLE_MARKER_KEY`]; a marked line is never touched
//!   again (`bundle_line_marked`), so a merged parent is not expanded and expanded components
//!   are not merged back;
//! - unknown component cost: no decrease (`bundle_cost_unknown`) unless the guard says
//!   `unknown_cost: allow` (cost counted as 0, as in the discount engine). A bundle whose
//!   decrease ends at 0 % is merged only when the policy sets `merge_without_discount`;
//! - holdout: the discount policy's split (same hash, key and salt); shoppers in the holdout get
//!   no merges at all (a 0 % merge would still be the bundle experience the holdout measures
//!   against), but their bundle parents are still expanded.
//!
//! What it deliberately does not do: `lineUpdate`. Its operation carries no line attributes, so
//! an updated line cannot be marked, and a transform re-run on its own output would decrease the
//! price again; it is also Shopify Plus only. A policy asking for it gets
//! `bundle_line_update_ignored`.

pub mod compiled;
mod detail;
mod evaluate;
pub mod policy;
mod render;
pub mod split;

pub use detail::BundleDetail;
pub use evaluate::evaluate_bundles;
pub use policy::{BundlePolicy, ParsedBundlePolicy, parse_bundle_policy};

use crate::decision::Reason;
use crate::money::{Bps, Money};
use crate::policy::PolicySource;
use crate::request::{CustomerFacts, ProfileInput, VariantInput};

/// The GID prefix of product variants, used to render operation targets.
pub const VARIANT_GID_PREFIX: &str = "gid://shopify/ProductVariant/";

/// One cart line as the cart transform reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleLine {
    pub id: String,
    pub quantity: i64,
    /// Unit price, decimal text in the presentment currency.
    pub unit_price: String,
    /// The variant's GID; `None` for merchandise that is not a product variant.
    pub variant_id: Option<String>,
    /// The variant's `$app.offer` metafield (unit cost for the guard).
    pub variant: VariantInput,
    /// The value of the line attribute [`crate::format::BUNDLE_MARKER_KEY`], if set.
    pub marker: Option<String>,
}

/// Everything the engine needs for one cart transform run, as raw text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleRequest {
    /// The presentment currency's ISO code.
    pub currency_code: String,
    /// Shop currency to presentment currency, decimal text.
    pub presentment_rate: String,
    pub profile: ProfileInput,
    pub customer: CustomerFacts,
    pub lines: Vec<BundleLine>,
    /// The cart transform's `$app.bundles` metafield; `None` when absent.
    pub definitions: Option<String>,
    /// The cart transform's `$app.policy` metafield, with `$app.policy_compiled` beside it when
    /// there is one ([`compiled`]).
    pub policy: PolicySource,
    /// Key for the holdout: the customer GID, else empty (an anonymous shopper is never held out).
    pub holdout_key: String,
}

/// `quantity` units of one cart line going into a merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeLine {
    pub line_id: String,
    pub quantity: i64,
}

/// Complete bundles merged into their parent variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    /// The parent variant's GID.
    pub parent_variant_id: String,
    /// Number of complete sets merged.
    pub sets: i64,
    pub lines: Vec<MergeLine>,
    /// Percentage decrease of the merged price, basis points (0: no price adjustment).
    pub percent_decrease_bps: Bps,
    /// What the merged units cost before the decrease, presentment minor units.
    pub price_before_minor: Money,
    /// The decrease in money, `floor(price x bps)` (Shopify's rounding may differ by at most one
    /// minor unit per set, which the guard already kept back).
    pub discount_minor: Money,
}

/// One expanded item: `quantity` units per parent unit at a fixed unit price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandItem {
    /// The component variant's GID.
    pub variant_id: String,
    pub quantity: i64,
    /// Fixed price per unit, presentment minor units.
    pub unit_price_minor: Money,
}

/// A bundle parent line expanded into its components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expand {
    pub line_id: String,
    pub parent_variant_id: String,
    pub parent_unit_price_minor: Money,
    /// INVARIANT: `sum(quantity x unit_price_minor) == parent_unit_price_minor`.
    pub items: Vec<ExpandItem>,
}

/// The engine's answer to a cart transform run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BundleDecision {
    /// In definition order.
    pub merges: Vec<Merge>,
    /// In cart order.
    pub expands: Vec<Expand>,
    pub reasons: Vec<Reason>,
}
