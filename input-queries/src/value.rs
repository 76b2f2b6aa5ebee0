//! Small typed reads over Shopify's Wasm API values.

use shopify_function::wasm_api::Value;

/// A string value, copied out of the provider; `None` for null, a missing key or another type.
pub(crate) fn text(value: &Value) -> Option<String> {
    value.as_string()
}

/// An integer value. The Wasm API hands every number over as an `f64`; a value with a fraction, or
/// beyond the integers an `f64` holds exactly, reads as `None`.
pub(crate) fn integer(value: &Value) -> Option<i64> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    let number = value.as_number()?;
    // `as` is exact here: the value is integral and within +-2^53.
    (number.fract() == 0.0 && number.abs() <= EXACT).then_some(number as i64)
}
