//! `marginwise explain`: the Functions' log lines in words.
//!
//! Each run of the discount Function and the cart transform logs one line (engine/src/render.rs):
//! `mw offer=<id|-> <code>,<code>*<count>,...` or `mw bundles merge=<n> expand=<n> <codes>`. The
//! codes are stable and short so the line fits Shopify's log limits; this module says what each
//! one means and, where the merchant can act, what to do. Every [`ReasonCode`] has an entry (the
//! match is exhaustive, so a new code does not compile without one).

use std::fmt::Write as _;

use marginwise_engine::ReasonCode;

/// What a code means, and what the merchant can do about it (when anything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meaning {
    pub what: &'static str,
    pub action: Option<&'static str>,
}

const fn said(what: &'static str) -> Meaning {
    Meaning { what, action: None }
}

const fn act(what: &'static str, action: &'static str) -> Meaning {
    Meaning {
        what,
        action: Some(action),
    }
}

/// The meaning of `code`.
pub fn meaning(code: ReasonCode) -> Meaning {
    use ReasonCode as C;
    match code {
        C::PolicyMissing => act(
            "the discount has no policy ($app.policy): no offer at all",
            "set one in the discount's settings in the admin, or with `marginwise discount`",
        ),
        C::PolicyMalformed => act(
            "the policy cannot be read (not JSON, or a wrong top-level field): no offer at all",
            "open the discount's settings in the admin, which names the problem, or run `marginwise compile-policy` on the file",
        ),
        C::PolicyUnsupportedVersion => act(
            "the policy is of a version this Function does not read: no offer at all",
            "deploy the marginwise version the policy was written for, or write a version 1 policy",
        ),
        C::PolicyCurrencyUnknown => act(
            "the policy's or the cart's currency code is not one the Function knows: no offer",
            "give the policy the shop's ISO 4217 currency",
        ),
        C::RateInvalid => said(
            "the cart's exchange rate to the shop currency could not be read: amounts could not be converted, no offer",
        ),
        C::ProfileMalformed => act(
            "the customer's $app.profile value cannot be read: offers that need a profile are skipped",
            "run `marginwise score` and `apply` again; a profile written by another tool has the wrong format",
        ),
        C::ProfileMissing => said(
            "the shopper has no profile (anonymous, or not scored yet): offers that need a segment, value or churn risk are skipped",
        ),
        C::HoldoutIn => said(
            "the shopper is in the holdout group: no personalized offer, by design (the group `marginwise measure` compares against)",
        ),
        C::HoldoutOut => {
            said("the shopper is not held out (or, anonymous, never is): offers may apply")
        }
        C::NoEligibleOffer => said("no offer applied to this cart and shopper"),
        C::OfferSelected => said("an offer was given (the one named after offer=)"),
        C::RenderedByOtherTarget => said(
            "the offer chosen is given by the Function's other target (shipping offers on the delivery target, product and order offers on the cart-lines target)",
        ),
        C::EmptyCart => said("the cart had no lines"),
        C::OfferMalformed => act(
            "an offer in the policy cannot be read and was skipped; the others still apply",
            "open the discount's settings in the admin, which names the field",
        ),
        C::SegmentNotEligible => said("an offer is for other segments than the shopper's"),
        C::ClvOutOfRange => {
            said("the shopper's predicted 12-month value is outside an offer's range")
        }
        C::ChurnBelowMinimum => said("the shopper's churn risk is below an offer's minimum"),
        C::SubtotalBelowMinimum => said("the cart's subtotal is below an offer's minimum"),
        C::CustomerTypeNotEligible => {
            said("an offer is for new (or returning) customers and the shopper is not one")
        }
        C::ClassNotAllowed => act(
            "an offer needs a discount class (product, order or shipping) the discount does not have",
            "add the class in the discount's settings (the settings page sets the classes its offers need)",
        ),
        C::NoTargetLines => said(
            "an offer had no line it could discount (every line excluded: unknown cost, bundle parent, or no room above the margin floor)",
        ),
        C::NoSlotFound => said(
            "a recommendation offer found no line in the cart that complements another product in it",
        ),
        C::NoShippingToDiscount => said("a shipping offer found no shipping cost to discount"),
        C::GuardReduced => said(
            "the margin guard made a discount smaller so that no line (or the order) goes below its margin floor",
        ),
        C::GuardDropped => said(
            "the margin guard left no room: the discount would have gone below the margin floor, so it was dropped",
        ),
        C::CapReduced => said("an offer's cap (the most it gives on one order) made it smaller"),
        C::NotSelected => said(
            "an offer applied but another was chosen (priority order, or the one worth most to the shopper)",
        ),
        C::LineCostUnknown => act(
            "a line's unit cost is unknown, so it was left out of discounts (the guard cannot protect its margin)",
            "set the variant's cost in the admin and run `marginwise score` and `apply`; or allow unknown costs in the guard",
        ),
        C::LineVariantMalformed => act(
            "a variant's $app.offer value cannot be read: the line is left out of discounts",
            "run `marginwise score` and `apply` again",
        ),
        C::LineBundleParentExcluded => said(
            "a line is a bundle the cart transform prices, so recommendation offers leave it alone (no double discount)",
        ),
        C::Overflow => {
            said("an amount too large to compute safely: that offer (or line) was left out")
        }
        C::ShippingCostMalformed => {
            said("a delivery group's shipping cost could not be read; that group got no discount")
        }
        C::BundleDefinitionsMissing => act(
            "the cart transform has no bundle definitions ($app.bundles): no bundle operations",
            "run `marginwise cart-transform` with the bundle file",
        ),
        C::BundleDefinitionMalformed => act(
            "a bundle definition cannot be read and was skipped",
            "run `marginwise compile-bundles` on the bundle file: it names the problem",
        ),
        C::BundleLineMarked => said(
            "a line is the cart transform's own merge or expansion and was left as it is (running it again changes nothing)",
        ),
        C::BundleExpanded => said("a bundle sold as one line was shown as its components"),
        C::BundleIncomplete => {
            said("some but not all components of a bundle are in the cart: no merge")
        }
        C::BundleMerged => said("a complete bundle was merged into its bundle line"),
        C::BundleComponentShared => {
            said("a complete bundle lost a line to a more valuable bundle that shares it: no merge")
        }
        C::BundleCostUnknown => act(
            "a component's unit cost is unknown, so the bundle got no discount",
            "set the variant's cost in the admin",
        ),
        C::BundleNotDiscounted => said(
            "the bundle would get no discount and the bundle policy does not merge without one",
        ),
        C::BundleLineUpdateIgnored => {
            said("the bundle policy asks for line updates, which this build does not make")
        }
        C::BundleUnevenQuantities => said(
            "every component is in the cart, but not in whole sets: merges take whole lines, so no merge",
        ),
        C::BundleOutputLimit => {
            said("bundle operations were left out to stay under Shopify's 20,000-byte output limit")
        }
        C::PolicyCompiledStale => act(
            "the policy's compiled form does not match its JSON, so the JSON was read: the same decision, more instructions",
            "save the policy once in the discount's settings, or run `marginwise discount --recompile`",
        ),
        C::BundleDefinitionsStale => act(
            "the bundle list changed after it was checked, so it was read in full: the same decision, more instructions",
            "run `marginwise cart-transform` again",
        ),
        C::OutputLimit => said(
            "some of an offer's line discounts were left out to stay under Shopify's 20,000-byte output limit",
        ),
        C::TooManyOffers => act(
            "the policy has more offers than a run can evaluate: only the first 24 are read",
            "remove offers",
        ),
        C::BundleWorkLimit => said(
            "comparing the bundles in this cart would take too many instructions: merging stopped, the merges made so far were kept",
        ),
        C::LineMalformed => {
            said("a cart line's price or quantity could not be read: the line is left out")
        }
    }
}

/// One Function log line, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The line as found.
    pub text: String,
    /// `offer=<id>` / `bundles merge=.. expand=..`: what the run did.
    pub outcome: Outcome,
    /// The codes in order, with how often each occurred; unknown codes kept as text.
    pub codes: Vec<(Result<ReasonCode, String>, usize)>,
    /// Whether the line was cut to fit the log (`+more`).
    pub cut: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Offer(Option<String>),
    Bundles { merges: String, expands: String },
}

/// Every marginwise log line in `text`: plain `shopify app logs` output, its JSON (the line
/// inside a string, `\n` escaped) or a run-log payload file.
pub fn find_log_lines(text: &str) -> Vec<LogLine> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("mw ") {
        let candidate = &rest[start..];
        let end = candidate
            .find(['"', '\n', '\r', '\\'])
            .unwrap_or(candidate.len());
        match parse_line(&candidate[..end]) {
            Some(line) => {
                found.push(line);
                rest = &candidate[end..];
            }
            // Not a log line after all ("mw " in other text): look on after it.
            None => rest = &candidate[3..],
        }
    }
    found
}

/// Whether `text` (a file, or a stream read whole) holds a Function run without log lines: a
/// run-log payload (`{"payload": {...}}`, pretty-printed or one per line as `shopify app logs
/// --json` prints them) whose `logs` is missing or empty. Such a run still has its input: replayed,
/// it gives its log line back.
pub fn run_without_logs(text: &str) -> bool {
    let empty_logs = |value: &serde_json::Value| {
        value.get("payload").is_some_and(|payload| {
            payload
                .get("logs")
                .is_none_or(|logs| logs.as_str().is_none_or(str::is_empty))
        })
    };
    let parsed = |text: &str| serde_json::from_str::<serde_json::Value>(text).ok();
    parsed(text).is_some_and(|value| empty_logs(&value))
        || text
            .lines()
            .filter_map(parsed)
            .any(|value| empty_logs(&value))
}

fn parse_line(line: &str) -> Option<LogLine> {
    let mut words = line.split(' ');
    if words.next() != Some("mw") {
        return None;
    }
    let head = words.next()?;
    let (outcome, codes_word) = if let Some(id) = head.strip_prefix("offer=") {
        let offer = (id != "-").then(|| id.to_string());
        (Outcome::Offer(offer), words.next())
    } else if head == "bundles" {
        let merges = words.next()?.strip_prefix("merge=")?.to_string();
        let expands = words.next()?.strip_prefix("expand=")?.to_string();
        (Outcome::Bundles { merges, expands }, words.next())
    } else {
        return None;
    };
    let mut codes = Vec::new();
    let mut cut = false;
    for item in codes_word.unwrap_or_default().split(',') {
        if item.is_empty() {
            continue;
        }
        if item == "+more" {
            cut = true;
            continue;
        }
        let (name, count) = match item.split_once('*') {
            Some((name, count)) => (name, count.parse().unwrap_or(1)),
            None => (item, 1),
        };
        let code = ReasonCode::from_code(name).ok_or_else(|| name.to_string());
        codes.push((code, count));
    }
    Some(LogLine {
        text: line.to_string(),
        outcome,
        codes,
        cut,
    })
}

/// `line` in words, one code per line.
pub fn render(line: &LogLine) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", line.text);
    match &line.outcome {
        Outcome::Offer(Some(id)) => {
            let _ = writeln!(out, "  outcome: offer \"{id}\" given");
        }
        Outcome::Offer(None) => {
            let _ = writeln!(out, "  outcome: no personalized offer");
        }
        Outcome::Bundles { merges, expands } => {
            let _ = writeln!(
                out,
                "  outcome: {merges} bundle(s) merged, {expands} expanded"
            );
        }
    }
    for (code, count) in &line.codes {
        let times = if *count > 1 {
            format!(" (x{count})")
        } else {
            String::new()
        };
        match code {
            Ok(code) => {
                let m = meaning(*code);
                let _ = writeln!(out, "  {}{times}: {}", code.code(), m.what);
                if let Some(action) = m.action {
                    let _ = writeln!(out, "    what to do: {action}");
                }
            }
            Err(name) => {
                let _ = writeln!(
                    out,
                    "  {name}{times}: not a code this marginwise knows (a newer Function?)"
                );
            }
        }
    }
    if line.cut {
        let _ = writeln!(
            out,
            "  +more: further codes were cut to keep the line within {} bytes",
            marginwise_engine::MAX_LOG_LINE_BYTES
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn every_code_has_a_meaning_of_its_own() {
        let mut seen = std::collections::HashSet::new();
        for code in ReasonCode::ALL {
            let m = meaning(code);
            assert!(!m.what.is_empty(), "{code:?}");
            assert!(seen.insert(m.what), "{code:?} shares its meaning");
        }
    }

    #[test]
    fn reads_plain_and_json_escaped_lines() {
        let text = r#"{"payload":{"logs":"mw offer=vip-10 holdout_in,segment_not_eligible*2,offer_selected\n"}}
2026-11-21 mw offer=- policy_missing
noise mwx mw nothing mw bundles merge=1 expand=0 bundle_merged,bundle_incomplete*3,someday_code,+more"#;
        let lines = find_log_lines(text);
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert_eq!(lines[0].outcome, Outcome::Offer(Some("vip-10".to_string())));
        assert_eq!(
            lines[0].codes,
            [
                (Ok(ReasonCode::HoldoutIn), 1),
                (Ok(ReasonCode::SegmentNotEligible), 2),
                (Ok(ReasonCode::OfferSelected), 1),
            ]
        );
        assert_eq!(lines[1].outcome, Outcome::Offer(None));
        assert_eq!(
            lines[2].outcome,
            Outcome::Bundles {
                merges: "1".to_string(),
                expands: "0".to_string()
            }
        );
        assert!(lines[2].cut);
        assert_eq!(lines[2].codes[2], (Err("someday_code".to_string()), 1));
        let words = render(&lines[2]);
        assert!(
            words.contains("bundle_incomplete (x3): some but not all"),
            "{words}"
        );
        assert!(words.contains("someday_code: not a code"), "{words}");
        assert!(words.contains("+more"), "{words}");
    }

    /// What the engine logs reads back code for code.
    #[test]
    fn reads_what_the_engine_writes() {
        use marginwise_engine::Detail;
        use marginwise_engine::decision::{Decision, MarginSummary, Reason};
        let reasons = vec![
            Reason {
                code: ReasonCode::HoldoutIn,
                subject: String::new(),
                detail: Detail::None,
            },
            Reason {
                code: ReasonCode::LineCostUnknown,
                subject: "gid://shopify/CartLine/1".to_string(),
                detail: Detail::None,
            },
            Reason {
                code: ReasonCode::LineCostUnknown,
                subject: "gid://shopify/CartLine/2".to_string(),
                detail: Detail::None,
            },
        ];
        let decision = Decision {
            offer_id: Some("a".to_string()),
            line_discounts: Vec::new(),
            order_discount: None,
            shipping_discounts: Vec::new(),
            margin: MarginSummary::default(),
            reasons,
        };
        let lines = find_log_lines(&decision.log_line());
        assert_eq!(
            lines[0].codes,
            [
                (Ok(ReasonCode::HoldoutIn), 1),
                (Ok(ReasonCode::LineCostUnknown), 2)
            ]
        );
    }
}
