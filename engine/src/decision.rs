//! What the engine answers: the discounts to apply and the reasons behind every offer considered.

use crate::detail::Detail;
use crate::money::{Bps, Money};

/// A machine-readable reason code. Codes are stable: they appear in Function logs, snapshots and
/// the merchant's reports. Add new codes; never rename or reuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReasonCode {
    // The decision as a whole.
    PolicyMissing,
    PolicyMalformed,
    PolicyUnsupportedVersion,
    PolicyCurrencyUnknown,
    RateInvalid,
    ProfileMalformed,
    ProfileMissing,
    HoldoutIn,
    HoldoutOut,
    NoEligibleOffer,
    OfferSelected,
    RenderedByOtherTarget,
    EmptyCart,
    // One offer or rule.
    OfferMalformed,
    SegmentNotEligible,
    ClvOutOfRange,
    ChurnBelowMinimum,
    SubtotalBelowMinimum,
    CustomerTypeNotEligible,
    ClassNotAllowed,
    NoTargetLines,
    NoSlotFound,
    NoShippingToDiscount,
    GuardReduced,
    GuardDropped,
    CapReduced,
    NotSelected,
    // One line or metafield.
    LineCostUnknown,
    /// The variant's `$app.offer` value cannot be read.
    LineVariantMalformed,
    LineBundleParentExcluded,
    Overflow,
    // Added after the first contract; appended so existing codes keep their order.
    /// A delivery group's shipping cost could not be read; that group gets no shipping discount.
    ShippingCostMalformed,
    // The cart transform (bundles), appended for the same reason.
    /// The cart transform has no `$app.bundles` metafield: no bundle operations at all.
    BundleDefinitionsMissing,
    /// The bundle definitions (or one bundle in them) could not be read; that bundle is skipped.
    BundleDefinitionMalformed,
    /// A line carries the transform's own marker: it was created by a merge or an expansion and is
    /// left alone, which is what makes the transform idempotent.
    BundleLineMarked,
    /// A bundle parent sold as one line was expanded into its components.
    BundleExpanded,
    /// Some but not all components of a bundle are in the cart: no merge.
    BundleIncomplete,
    /// A complete bundle was merged into its parent.
    BundleMerged,
    /// A complete bundle lost a line to a more valuable bundle that shares it: no merge.
    BundleComponentShared,
    /// A component's unit cost is unknown: the bundle gets no discount.
    BundleCostUnknown,
    /// The bundle would get no discount and the policy does not merge without one.
    BundleNotDiscounted,
    /// The policy asks for `line_update`, which this build does not render.
    BundleLineUpdateIgnored,
    /// Every component is in the cart but the lines' quantities do not form whole sets; merges
    /// take whole lines only, so the bundle is not merged.
    BundleUnevenQuantities,
    /// Operations left out so the Function's output stays under Shopify's 20,000-byte limit.
    BundleOutputLimit,
    // The compiled policy, appended for the same reason.
    /// `$app.policy_compiled` was not compiled from the JSON beside it, or cannot be read: the
    /// JSON was read instead (correct, but slower).
    PolicyCompiledStale,
    // Checked bundle lists, appended for the same reason.
    /// `$app.bundles` carries a fingerprint that does not match its list (it was changed after it
    /// was checked): the list was read in full instead (correct, but slower).
    BundleDefinitionsStale,
    // The offers' output limit, appended for the same reason.
    /// An offer's operations would not fit in Shopify's 20,000-byte output limit (which would lose
    /// every discount of the run): the line discounts that do not fit are left out, or an order
    /// discount whose excluded lines cannot all be listed is dropped.
    OutputLimit,
    /// The policy has more offers than a run can evaluate within Shopify's instruction limit:
    /// only the first [`crate::policy::MAX_OFFERS`] are read.
    TooManyOffers,
    /// The bundles in the cart would take more work to compare than a run can afford within
    /// Shopify's instruction limit (many lines of variants that many bundles share): merging
    /// stopped, the merges made so far are kept.
    BundleWorkLimit,
    /// A cart line's price or quantity cannot be read (its variant metafield may be fine): the
    /// line is left out of every discount.
    LineMalformed,
}

impl ReasonCode {
    /// Every code, in declaration order (for tools that read codes back, such as `marginwise
    /// explain`; a test checks it against [`ReasonCode::code`]).
    pub const ALL: [ReasonCode; 50] = [
        ReasonCode::PolicyMissing,
        ReasonCode::PolicyMalformed,
        ReasonCode::PolicyUnsupportedVersion,
        ReasonCode::PolicyCurrencyUnknown,
        ReasonCode::RateInvalid,
        ReasonCode::ProfileMalformed,
        ReasonCode::ProfileMissing,
        ReasonCode::HoldoutIn,
        ReasonCode::HoldoutOut,
        ReasonCode::NoEligibleOffer,
        ReasonCode::OfferSelected,
        ReasonCode::RenderedByOtherTarget,
        ReasonCode::EmptyCart,
        ReasonCode::OfferMalformed,
        ReasonCode::SegmentNotEligible,
        ReasonCode::ClvOutOfRange,
        ReasonCode::ChurnBelowMinimum,
        ReasonCode::SubtotalBelowMinimum,
        ReasonCode::CustomerTypeNotEligible,
        ReasonCode::ClassNotAllowed,
        ReasonCode::NoTargetLines,
        ReasonCode::NoSlotFound,
        ReasonCode::NoShippingToDiscount,
        ReasonCode::GuardReduced,
        ReasonCode::GuardDropped,
        ReasonCode::CapReduced,
        ReasonCode::NotSelected,
        ReasonCode::LineCostUnknown,
        ReasonCode::LineVariantMalformed,
        ReasonCode::LineBundleParentExcluded,
        ReasonCode::Overflow,
        ReasonCode::ShippingCostMalformed,
        ReasonCode::BundleDefinitionsMissing,
        ReasonCode::BundleDefinitionMalformed,
        ReasonCode::BundleLineMarked,
        ReasonCode::BundleExpanded,
        ReasonCode::BundleIncomplete,
        ReasonCode::BundleMerged,
        ReasonCode::BundleComponentShared,
        ReasonCode::BundleCostUnknown,
        ReasonCode::BundleNotDiscounted,
        ReasonCode::BundleLineUpdateIgnored,
        ReasonCode::BundleUnevenQuantities,
        ReasonCode::BundleOutputLimit,
        ReasonCode::PolicyCompiledStale,
        ReasonCode::BundleDefinitionsStale,
        ReasonCode::OutputLimit,
        ReasonCode::TooManyOffers,
        ReasonCode::BundleWorkLimit,
        ReasonCode::LineMalformed,
    ];

    /// The code of this text, if it is one.
    pub fn from_code(text: &str) -> Option<ReasonCode> {
        ReasonCode::ALL.into_iter().find(|code| code.code() == text)
    }

    /// The stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            ReasonCode::PolicyMissing => "policy_missing",
            ReasonCode::PolicyMalformed => "policy_malformed",
            ReasonCode::PolicyUnsupportedVersion => "policy_unsupported_version",
            ReasonCode::PolicyCurrencyUnknown => "policy_currency_unknown",
            ReasonCode::RateInvalid => "rate_invalid",
            ReasonCode::ProfileMalformed => "profile_malformed",
            ReasonCode::ProfileMissing => "profile_missing",
            ReasonCode::HoldoutIn => "holdout_in",
            ReasonCode::HoldoutOut => "holdout_out",
            ReasonCode::NoEligibleOffer => "no_eligible_offer",
            ReasonCode::OfferSelected => "offer_selected",
            ReasonCode::RenderedByOtherTarget => "rendered_by_other_target",
            ReasonCode::EmptyCart => "empty_cart",
            ReasonCode::OfferMalformed => "offer_malformed",
            ReasonCode::SegmentNotEligible => "segment_not_eligible",
            ReasonCode::ClvOutOfRange => "clv_out_of_range",
            ReasonCode::ChurnBelowMinimum => "churn_below_minimum",
            ReasonCode::SubtotalBelowMinimum => "subtotal_below_minimum",
            ReasonCode::CustomerTypeNotEligible => "customer_type_not_eligible",
            ReasonCode::ClassNotAllowed => "class_not_allowed",
            ReasonCode::NoTargetLines => "no_target_lines",
            ReasonCode::NoSlotFound => "no_slot_found",
            ReasonCode::NoShippingToDiscount => "no_shipping_to_discount",
            ReasonCode::GuardReduced => "guard_reduced",
            ReasonCode::GuardDropped => "guard_dropped",
            ReasonCode::CapReduced => "cap_reduced",
            ReasonCode::NotSelected => "not_selected",
            ReasonCode::LineCostUnknown => "line_cost_unknown",
            ReasonCode::LineVariantMalformed => "line_variant_malformed",
            ReasonCode::LineBundleParentExcluded => "line_bundle_parent_excluded",
            ReasonCode::Overflow => "overflow",
            ReasonCode::ShippingCostMalformed => "shipping_cost_malformed",
            ReasonCode::BundleDefinitionsMissing => "bundle_definitions_missing",
            ReasonCode::BundleDefinitionMalformed => "bundle_definition_malformed",
            ReasonCode::BundleLineMarked => "bundle_line_marked",
            ReasonCode::BundleExpanded => "bundle_expanded",
            ReasonCode::BundleIncomplete => "bundle_incomplete",
            ReasonCode::BundleMerged => "bundle_merged",
            ReasonCode::BundleComponentShared => "bundle_component_shared",
            ReasonCode::BundleCostUnknown => "bundle_cost_unknown",
            ReasonCode::BundleNotDiscounted => "bundle_not_discounted",
            ReasonCode::BundleLineUpdateIgnored => "bundle_line_update_ignored",
            ReasonCode::BundleUnevenQuantities => "bundle_uneven_quantities",
            ReasonCode::BundleOutputLimit => "bundle_output_limit",
            ReasonCode::PolicyCompiledStale => "policy_compiled_stale",
            ReasonCode::BundleDefinitionsStale => "bundle_definitions_stale",
            ReasonCode::OutputLimit => "output_limit",
            ReasonCode::TooManyOffers => "too_many_offers",
            ReasonCode::BundleWorkLimit => "bundle_work_limit",
            ReasonCode::LineMalformed => "line_malformed",
        }
    }
}

/// One reason: a code, what it is about (an offer id, a line id, a policy path) and a short detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub code: ReasonCode,
    /// Offer id, line id or JSON path the reason is about; empty for the decision as a whole.
    pub subject: String,
    /// The figures involved, as data; `Display` (or [`Reason::detail_text`]) renders the
    /// human-readable sentence (e.g. "1500 -> 820 (order headroom 820)").
    pub detail: Detail,
}

impl Reason {
    pub fn new(code: ReasonCode, subject: &str, detail: Detail) -> Reason {
        Reason {
            code,
            subject: subject.to_string(),
            detail,
        }
    }

    /// The detail as the readable sentence (empty when there is none).
    pub fn detail_text(&self) -> String {
        self.detail.to_string()
    }
}

/// A discount on one cart line, as a total amount for the whole line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineDiscount {
    pub line_id: String,
    pub amount_minor: Money,
    pub message: String,
}

/// A discount on the order subtotal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderDiscount {
    pub amount_minor: Money,
    /// Lines the discount must not be allocated to (unknown cost, bundle parents...).
    pub excluded_line_ids: Vec<String>,
    pub message: String,
}

/// A discount on one delivery group's shipping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippingDiscount {
    pub delivery_group_id: String,
    /// Percentage off the shipping cost, in basis points (10_000 = free shipping).
    pub percent_bps: Bps,
    pub message: String,
}

/// The margin picture of the cart after the decision, presentment minor units over lines of
/// known cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MarginSummary {
    pub revenue_minor: Money,
    pub cost_minor: Money,
    /// Our discount (all kinds) on lines of known cost.
    pub discount_minor: Money,
    /// Shipping discount given away, an estimate from the known shipping costs.
    pub shipping_discount_minor: Money,
    /// (revenue - discount - cost) / revenue, basis points; 0 when revenue is 0.
    pub margin_kept_bps: Bps,
}

/// The engine's answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// The winning offer's id, if any.
    pub offer_id: Option<String>,
    pub line_discounts: Vec<LineDiscount>,
    pub order_discount: Option<OrderDiscount>,
    pub shipping_discounts: Vec<ShippingDiscount>,
    pub margin: MarginSummary,
    /// Reasons for the decision, every offer considered and every line that was left out.
    pub reasons: Vec<Reason>,
}

#[cfg(test)]
mod tests {
    use super::ReasonCode;

    /// `ALL` holds every code once: as many entries as `code` has arms (counted in this file's
    /// source), and every code reads back.
    #[test]
    fn all_lists_every_code_once() {
        let source = include_str!("decision.rs");
        let before_tests = source.split("#[cfg(test)]").next().unwrap_or_default();
        assert_eq!(before_tests.matches("=> \"").count(), ReasonCode::ALL.len());
        let mut codes: Vec<&str> = ReasonCode::ALL.iter().map(|c| c.code()).collect();
        for code in ReasonCode::ALL {
            assert_eq!(ReasonCode::from_code(code.code()), Some(code));
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ReasonCode::ALL.len());
        assert_eq!(ReasonCode::from_code("no_such_code"), None);
    }
}
