//! Shopify's per-run Function limits, scaled for the input the way `@scaleLimits` scales them.
//!
//! Discount and cart transform inputs carry `@scaleLimits(rate: 0.005)` on `Cart.lines`: the scale
//! factor is `clamp(0.005 x lines, 1, 10)`, and it multiplies the instruction and input-size limits
//! only. The factor is kept in thousandths so every limit is exact integer arithmetic.

use std::fmt;

/// Instructions allowed at scale factor 1 (carts up to 200 lines).
pub const BASE_INSTRUCTIONS: u64 = 11_000_000;
/// Input query result size (as JSON) allowed at scale factor 1.
pub const BASE_INPUT_BYTES: u64 = 128_000;
/// Output size, never scaled.
pub const OUTPUT_BYTES: u64 = 20_000;
/// Log size; Shopify truncates beyond it.
pub const LOG_BYTES: u64 = 1_000;
/// Wasm module size.
pub const MODULE_BYTES: u64 = 256 * 1024;
/// Linear memory.
pub const MEMORY_BYTES: u64 = 10_000 * 1024;

/// The limits that apply to one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    /// `clamp(0.005 x lines, 1, 10)` in thousandths (1000 = factor 1).
    pub scale_thousandths: u64,
    pub instructions: u64,
    pub input_bytes: u64,
    pub output_bytes: u64,
    pub log_bytes: u64,
    pub module_bytes: u64,
    pub memory_bytes: u64,
}

impl Limits {
    /// The limits for an input whose cart has `n_lines` lines.
    pub fn for_cart_lines(n_lines: u64) -> Self {
        // 0.005 x lines = 5 x lines thousandths.
        let scale_thousandths = n_lines.saturating_mul(5).clamp(1_000, 10_000);
        let scaled = |base: u64| base.saturating_mul(scale_thousandths) / 1_000;
        Self {
            scale_thousandths,
            instructions: scaled(BASE_INSTRUCTIONS),
            input_bytes: scaled(BASE_INPUT_BYTES),
            output_bytes: OUTPUT_BYTES,
            log_bytes: LOG_BYTES,
            module_bytes: MODULE_BYTES,
            memory_bytes: MEMORY_BYTES,
        }
    }

    /// The scale factor as text, e.g. `2.5`.
    pub fn scale_text(&self) -> String {
        let whole = self.scale_thousandths / 1_000;
        let fraction = self.scale_thousandths % 1_000;
        if fraction == 0 {
            whole.to_string()
        } else {
            format!("{whole}.{}", format!("{fraction:03}").trim_end_matches('0'))
        }
    }
}

/// One limit a run went over.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LimitExceeded {
    pub limit: LimitKind,
    pub measured: u64,
    pub allowed: u64,
}

/// The names Shopify's limits go by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum LimitKind {
    Instructions,
    InputSize,
    OutputSize,
    Logs,
    ModuleSize,
    Memory,
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitKind::Instructions => "instruction limit",
            LimitKind::InputSize => "input size limit",
            LimitKind::OutputSize => "output size limit",
            LimitKind::Logs => "log size limit",
            LimitKind::ModuleSize => "module size limit",
            LimitKind::Memory => "linear memory limit",
        })
    }
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.limit {
            LimitKind::Instructions => "instructions",
            _ => "bytes",
        };
        write!(
            f,
            "{} exceeded: {} {unit}, allowed {} {unit}",
            self.limit,
            group(self.measured),
            group(self.allowed)
        )
    }
}

/// `1234567` as `1,234,567`, for messages and tables.
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len().saturating_add(digits.len() / 3));
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len().saturating_sub(i)) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_factor_follows_cart_lines() {
        let cases = [
            (0, 1_000, 11_000_000, 128_000, "1"),
            (1, 1_000, 11_000_000, 128_000, "1"),
            (200, 1_000, 11_000_000, 128_000, "1"),
            (201, 1_005, 11_055_000, 128_640, "1.005"),
            (500, 2_500, 27_500_000, 320_000, "2.5"),
            (2_000, 10_000, 110_000_000, 1_280_000, "10"),
            (5_000, 10_000, 110_000_000, 1_280_000, "10"),
        ];
        for (lines, scale, instructions, input, text) in cases {
            let limits = Limits::for_cart_lines(lines);
            assert_eq!(limits.scale_thousandths, scale, "lines {lines}");
            assert_eq!(limits.instructions, instructions, "lines {lines}");
            assert_eq!(limits.input_bytes, input, "lines {lines}");
            assert_eq!(limits.output_bytes, 20_000);
            assert_eq!(limits.scale_text(), text);
        }
    }

    #[test]
    fn grouping() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1_000), "1,000");
        assert_eq!(group(11_000_000), "11,000,000");
    }
}
