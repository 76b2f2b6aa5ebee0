//! Text forms of a decision: the readable block used by snapshots and the demo table, and the one
//! short line a Function writes to its log.

use std::fmt::Write as _;

use crate::decision::{Decision, Reason, ReasonCode};

/// A Function log line must stay short: Shopify keeps 1 KB of log per run, shared with the
/// Function's other output.
pub const MAX_LOG_LINE_BYTES: usize = 200;

/// Marks a log line whose reason list was cut to fit.
const TRUNCATED: &str = ",+more";

impl Decision {
    /// A stable, readable multi-line description: the offer, every operation, the margin summary
    /// and every reason with its subject and detail. Amounts are minor units of the cart currency.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "offer: {}", self.offer_id.as_deref().unwrap_or("-"));
        if !self.line_discounts.is_empty() {
            out.push_str("line discounts:\n");
            for line in &self.line_discounts {
                let _ = writeln!(
                    out,
                    "  {}: {} {:?}",
                    line.line_id, line.amount_minor, line.message
                );
            }
        }
        if let Some(order) = &self.order_discount {
            let _ = writeln!(
                out,
                "order discount: {} {:?}",
                order.amount_minor, order.message
            );
            if !order.excluded_line_ids.is_empty() {
                let _ = writeln!(out, "  excluded: {}", order.excluded_line_ids.join(", "));
            }
        }
        if !self.shipping_discounts.is_empty() {
            out.push_str("shipping discounts:\n");
            for shipping in &self.shipping_discounts {
                let _ = writeln!(
                    out,
                    "  {}: {} bps {:?}",
                    shipping.delivery_group_id, shipping.percent_bps, shipping.message
                );
            }
        }
        let m = &self.margin;
        let _ = writeln!(
            out,
            "margin: revenue {}, cost {}, discount {}, shipping discount {}, kept {} bps",
            m.revenue_minor,
            m.cost_minor,
            m.discount_minor,
            m.shipping_discount_minor,
            m.margin_kept_bps
        );
        write_reasons(&mut out, &self.reasons);
        out
    }

    /// One short line for the Function log (at most [`MAX_LOG_LINE_BYTES`] bytes):
    /// `mw offer=<id|-> <codes>`, the reason codes in order of first appearance, each once, with
    /// a count when it occurred more than once (`line_cost_unknown*37`).
    pub fn log_line(&self) -> String {
        let id = self.offer_id.as_deref().unwrap_or("-");
        let mut head = String::with_capacity(MAX_LOG_LINE_BYTES);
        head.push_str("mw offer=");
        head.push_str(truncate(id, 64));
        append_reason_codes(head, &self.reasons)
    }
}

/// Lists every reason, one per line (`  code [subject]: detail`), under a `reasons:` heading; shared
/// by the discount's and the cart transform's `render_text`.
pub(crate) fn write_reasons(out: &mut String, reasons: &[Reason]) {
    out.push_str("reasons:\n");
    for reason in reasons {
        let _ = write!(out, "  {}", reason.code.code());
        if !reason.subject.is_empty() {
            let _ = write!(out, " [{}]", reason.subject);
        }
        if !reason.detail.is_empty() {
            let _ = write!(out, ": {}", reason.detail);
        }
        out.push('\n');
    }
}

/// Appends the reason codes to a log line's head: in order of first appearance, each once, with a
/// count when repeated (`line_cost_unknown*37`), cut with `,+more` so the line stays within
/// [`MAX_LOG_LINE_BYTES`]. Shared by both Functions' log lines.
pub(crate) fn append_reason_codes(mut line: String, reasons: &[Reason]) -> String {
    let mut counts: Vec<(ReasonCode, usize)> = Vec::new();
    for reason in reasons {
        match counts.iter_mut().find(|(code, _)| *code == reason.code) {
            Some((_, count)) => *count += 1,
            None => counts.push((reason.code, 1)),
        }
    }
    let mut separator = ' ';
    // Built in place rather than with `format!` per code (about 850 instructions each in the
    // Function); an entry that does not fit is taken back out.
    for (code, count) in counts {
        let start = line.len();
        line.push(separator);
        line.push_str(code.code());
        if count > 1 {
            line.push('*');
            push_count(&mut line, count);
        }
        if line.len() + TRUNCATED.len() > MAX_LOG_LINE_BYTES {
            line.truncate(start);
            line.push_str(TRUNCATED);
            break;
        }
        separator = ',';
    }
    line
}

/// Appends `n` in decimal.
pub(crate) fn push_count(line: &mut String, n: usize) {
    line.push_str(itoa::Buffer::new().format(n));
}

/// The longest prefix of `text` of at most `max_bytes` bytes that ends on a character boundary.
fn truncate(text: &str, max_bytes: usize) -> &str {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or("")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use crate::decision::{Decision, Reason, ReasonCode};

    fn reason(code: ReasonCode) -> Reason {
        Reason {
            code,
            subject: "s".to_string(),
            detail: crate::detail::Detail::None,
        }
    }

    #[test]
    fn log_line_counts_repeated_codes_in_order_of_first_appearance() {
        let mut reasons = vec![reason(ReasonCode::HoldoutOut)];
        reasons.extend((0..37).map(|_| reason(ReasonCode::LineCostUnknown)));
        reasons.push(reason(ReasonCode::OfferSelected));
        reasons.push(reason(ReasonCode::LineCostUnknown));
        let decision = Decision {
            offer_id: Some("vip-10".to_string()),
            reasons,
            ..Decision::default()
        };
        assert_eq!(
            decision.log_line(),
            "mw offer=vip-10 holdout_out,line_cost_unknown*38,offer_selected"
        );
        assert_eq!(Decision::default().log_line(), "mw offer=-");
    }

    #[test]
    fn log_line_is_cut_at_a_code_boundary_when_too_long() {
        let codes = [
            ReasonCode::PolicyUnsupportedVersion,
            ReasonCode::PolicyCurrencyUnknown,
            ReasonCode::LineBundleParentExcluded,
            ReasonCode::CustomerTypeNotEligible,
            ReasonCode::RenderedByOtherTarget,
            ReasonCode::SubtotalBelowMinimum,
            ReasonCode::NoShippingToDiscount,
            ReasonCode::ShippingCostMalformed,
            ReasonCode::LineVariantMalformed,
            ReasonCode::SegmentNotEligible,
        ];
        let decision = Decision {
            offer_id: Some("x".repeat(100)),
            reasons: codes.into_iter().map(reason).collect(),
            ..Decision::default()
        };
        let line = decision.log_line();
        assert!(
            line.len() <= super::MAX_LOG_LINE_BYTES,
            "{} bytes",
            line.len()
        );
        assert!(line.ends_with(",+more"), "{line}");
        assert!(line.starts_with(&format!(
            "mw offer={} policy_unsupported_version,",
            "x".repeat(64)
        )));
    }
}
