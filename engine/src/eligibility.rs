//! Whether an offer applies to this shopper and cart at all, before any amount is computed.

use crate::cart::Conversion;
use crate::decision::ReasonCode;
use crate::detail::Detail;
use crate::format::Profile;
use crate::money::Money;
use crate::policy::{CustomerType, Eligibility, Reward};
use crate::request::DiscountClasses;

/// The first rule the offer fails: a reason code and the figures behind it.
pub(crate) struct Ineligible {
    pub code: ReasonCode,
    pub detail: Detail,
}

fn fail(code: ReasonCode, detail: Detail) -> Result<(), Ineligible> {
    Err(Ineligible { code, detail })
}

/// What the eligibility rules look at.
pub(crate) struct Shopper<'p> {
    pub profile: Option<&'p Profile>,
    /// `numberOfOrders`; `None` for an anonymous shopper.
    pub number_of_orders: Option<i64>,
    /// Cart subtotal over every readable line (presentment minor units); `None` on overflow.
    pub subtotal: Option<Money>,
}

/// Checks the rules in the documented order; the first failing one is the reason.
pub(crate) fn check(
    eligibility: &Eligibility,
    reward: &Reward,
    shopper: &Shopper<'_>,
    classes: DiscountClasses,
    conversion: Conversion,
) -> Result<(), Ineligible> {
    if !eligibility.segments.is_empty() {
        match shopper.profile {
            None => return fail(ReasonCode::SegmentNotEligible, Detail::NoProfile),
            Some(profile) if !eligibility.segments.contains(&profile.segment) => {
                return fail(
                    ReasonCode::SegmentNotEligible,
                    Detail::Segment(profile.segment),
                );
            }
            Some(_) => {}
        }
    }
    if eligibility.clv_min.is_some() || eligibility.clv_max.is_some() {
        let Some(profile) = shopper.profile else {
            return fail(ReasonCode::ClvOutOfRange, Detail::NoProfile);
        };
        if let Some(min) = eligibility.clv_min.filter(|min| profile.clv_minor < *min) {
            return fail(
                ReasonCode::ClvOutOfRange,
                Detail::ClvBelowMinimum {
                    clv: profile.clv_minor,
                    min,
                },
            );
        }
        if let Some(max) = eligibility.clv_max.filter(|max| profile.clv_minor > *max) {
            return fail(
                ReasonCode::ClvOutOfRange,
                Detail::ClvAboveMaximum {
                    clv: profile.clv_minor,
                    max,
                },
            );
        }
    }
    if let Some(min) = eligibility.churn_min_bps {
        match shopper.profile {
            None => return fail(ReasonCode::ChurnBelowMinimum, Detail::NoProfile),
            Some(profile) if profile.churn_bps < min => {
                return fail(
                    ReasonCode::ChurnBelowMinimum,
                    Detail::ChurnBelowMinimum {
                        churn_bps: profile.churn_bps,
                        min_bps: min,
                    },
                );
            }
            Some(_) => {}
        }
    }
    if let Some(min_shop) = eligibility.subtotal_min {
        let (Ok(min), Some(subtotal)) = (conversion.to_presentment(min_shop), shopper.subtotal)
        else {
            return fail(ReasonCode::Overflow, Detail::SubtotalOverflow);
        };
        if subtotal < min {
            return fail(
                ReasonCode::SubtotalBelowMinimum,
                Detail::SubtotalBelowMinimum { subtotal, min },
            );
        }
    }
    let is_new = shopper.number_of_orders.is_none_or(|n| n == 0);
    match (eligibility.customer, is_new) {
        (CustomerType::New, false) => {
            return fail(
                ReasonCode::CustomerTypeNotEligible,
                Detail::ReturningCustomer,
            );
        }
        (CustomerType::Returning, true) => {
            return fail(ReasonCode::CustomerTypeNotEligible, Detail::NewCustomer);
        }
        _ => {}
    }
    let class = reward.class();
    if !classes.allows(class) {
        return fail(
            ReasonCode::ClassNotAllowed,
            Detail::ClassNotAllowed(class.name()),
        );
    }
    Ok(())
}
