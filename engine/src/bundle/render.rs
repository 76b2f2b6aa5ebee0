//! Text forms of a bundle decision, like [`crate::Decision`]'s: a readable block for snapshots
//! and the demo, and one short Function log line.

use std::fmt::Write as _;

use super::BundleDecision;
use crate::MAX_LOG_LINE_BYTES;
use crate::render::{append_reason_codes, push_count, write_reasons};

impl BundleDecision {
    /// A stable, readable multi-line description: every merge and expansion with its lines and
    /// amounts (presentment minor units), then every reason.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        if self.merges.is_empty() {
            out.push_str("merges: -\n");
        } else {
            out.push_str("merges:\n");
        }
        for merge in &self.merges {
            let _ = writeln!(
                out,
                "  {} x{}: decrease {} bps, price {}, discount {}",
                merge.parent_variant_id,
                merge.sets,
                merge.percent_decrease_bps,
                merge.price_before_minor,
                merge.discount_minor
            );
            for line in &merge.lines {
                let _ = writeln!(out, "    {} x{}", line.line_id, line.quantity);
            }
        }
        if self.expands.is_empty() {
            out.push_str("expands: -\n");
        } else {
            out.push_str("expands:\n");
        }
        for expand in &self.expands {
            let _ = writeln!(
                out,
                "  {} ({}): unit price {}",
                expand.line_id, expand.parent_variant_id, expand.parent_unit_price_minor
            );
            for item in &expand.items {
                let _ = writeln!(
                    out,
                    "    {} x{} @ {}",
                    item.variant_id, item.quantity, item.unit_price_minor
                );
            }
        }
        write_reasons(&mut out, &self.reasons);
        out
    }

    /// One short line for the Function log (at most [`MAX_LOG_LINE_BYTES`] bytes):
    /// `mw bundles merge=<n> expand=<n> <codes>`, codes in order of first appearance, each once,
    /// with a count when repeated (`bundle_expanded*3`).
    pub fn log_line(&self) -> String {
        let mut head = String::with_capacity(MAX_LOG_LINE_BYTES);
        head.push_str("mw bundles merge=");
        push_count(&mut head, self.merges.len());
        head.push_str(" expand=");
        push_count(&mut head, self.expands.len());
        append_reason_codes(head, &self.reasons)
    }
}
