//! Renders engine amounts back into Shopify's decimal strings, and writes the decision's log line.
//! Nothing here decides anything.

/// Minor units of the cart currency as Shopify's decimal text, or `None` when the currency is
/// unknown (then nothing is rendered: the engine gives no offer in an unknown currency).
pub fn amount(minor: marginwise_engine::Money, currency_code: &str) -> Option<String> {
    let currency = marginwise_engine::Currency::from_code(currency_code)?;
    Some(marginwise_engine::money::format_decimal_minor(
        minor,
        currency.exponent,
    ))
}

/// Basis points as a percentage with two decimals (10_000 bps -> "100.00").
pub fn percent(bps: marginwise_engine::Bps) -> String {
    marginwise_engine::money::format_decimal_minor(bps, 2)
}

/// Writes the decision's one-line summary to the Function log (Shopify keeps the first 1,000
/// bytes). The line goes straight to the log API: `log!` would format it a second time.
pub fn log(decision: &marginwise_engine::Decision) {
    let mut line = decision.log_line();
    line.push('\n');
    shopify_function::wasm_api::Context.log(&line);
}
