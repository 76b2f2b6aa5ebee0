//! The two gates every evaluation passes before it looks at offers or bundles: the holdout and the
//! customer's profile. The discount and the cart transform share them so that a shopper is held out
//! of both or neither, and a corrupt profile stops both the same way.

use crate::decision::{Reason, ReasonCode};
use crate::detail::Detail;
use crate::format::Profile;
use crate::holdout;
use crate::policy::Holdout;
use crate::request::ProfileInput;

/// Whether the shopper is in the holdout group; records `holdout_in` or `holdout_out`. A policy
/// without a holdout (or with a zero share) records nothing.
pub(crate) fn held_out(holdout: Option<&Holdout>, key: &str, reasons: &mut Vec<Reason>) -> bool {
    let Some(holdout) = Holdout::applied(holdout) else {
        return false;
    };
    if key.is_empty() {
        reasons.push(Reason::new(
            ReasonCode::HoldoutOut,
            "",
            Detail::NoHoldoutKey,
        ));
        return false;
    }
    let bucket = holdout::bucket(key, &holdout.salt);
    let detail = Detail::Holdout {
        bucket,
        share_bps: holdout.share_bps,
    };
    let held_out = i64::from(bucket) < holdout.share_bps;
    let code = if held_out {
        ReasonCode::HoldoutIn
    } else {
        ReasonCode::HoldoutOut
    };
    reasons.push(Reason::new(code, "", detail));
    held_out
}

/// The shopper's profile: `Ok(None)` for an anonymous shopper or a customer without one (with a
/// `profile_missing` reason), `Err(())` for an unreadable profile (with `profile_malformed`): a
/// corrupt profile could put the shopper in the wrong segment, so the caller gives no offer at all.
pub(crate) fn profile(
    input: &ProfileInput,
    reasons: &mut Vec<Reason>,
) -> Result<Option<Profile>, ()> {
    match input {
        ProfileInput::Anonymous => {
            reasons.push(Reason::new(
                ReasonCode::ProfileMissing,
                "",
                Detail::Anonymous,
            ));
            Ok(None)
        }
        ProfileInput::Missing => {
            reasons.push(Reason::new(
                ReasonCode::ProfileMissing,
                "",
                Detail::NoProfileMetafield,
            ));
            Ok(None)
        }
        ProfileInput::Text(text) => Profile::decode(text).map(Some).map_err(|error| {
            reasons.push(Reason::new(
                ReasonCode::ProfileMalformed,
                "",
                Detail::Profile(error),
            ));
        }),
    }
}
