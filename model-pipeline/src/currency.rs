//! The shop currency: an ISO 4217 code checked against the standard's list before the engine's
//! [`Currency`] stands for it.
//!
//! `marginwise_engine::money::Currency::from_code` accepts any three capital letters, on purpose:
//! the Functions have no room for the list, and give every code outside their short table of
//! exceptions two decimals. What the pipeline writes (a plan, a policy and its compiled form) is
//! read by those Functions in minor units with the engine's exponent, so the pipeline takes a code
//! only when ISO 4217 (the `iso_currency` crate) lists it as a currency a shop can sell in, and
//! only when the engine reads it with the decimals ISO 4217 gives it: `QQQ` (no currency), `XAU`
//! (gold), `XXX` (no currency), `XTS` (testing) or a fund code such as `CLF` are refused.

use iso_currency::Currency as Iso;
use marginwise_engine::money::Currency;

/// Why a code is not a shop currency.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?} {why}")]
pub struct CurrencyError {
    pub code: String,
    pub why: String,
}

/// The engine's currency for `code`, if it is an ISO 4217 currency a shop can sell in and the
/// engine reads it with the minor unit ISO 4217 gives it.
pub fn shop_currency(code: &str) -> Result<Currency, CurrencyError> {
    let refuse = |why: String| CurrencyError {
        code: code.to_string(),
        why,
    };
    let Some(iso) = Iso::from_code(code) else {
        return Err(refuse("is not an ISO 4217 currency code".into()));
    };
    if iso.is_special() {
        return Err(refuse(format!(
            "is the ISO 4217 code of {}, not a currency a shop sells in",
            iso.name()
        )));
    }
    if iso.is_fund() {
        return Err(refuse(format!(
            "is an ISO 4217 fund code ({}), not a currency a shop sells in",
            iso.name()
        )));
    }
    let Some(exponent) = iso.exponent() else {
        return Err(refuse(format!(
            "has no minor unit in ISO 4217 ({})",
            iso.name()
        )));
    };
    let Some(engine) = Currency::from_code(code) else {
        return Err(refuse("is not three capital letters".into()));
    };
    if u16::from(engine.exponent) != exponent {
        return Err(refuse(format!(
            "has {exponent} decimals in ISO 4217, but the checkout Functions would read its \
             amounts with {}",
            engine.exponent
        )));
    }
    Ok(engine)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;
    use crate::sync::apply::COMPARE_EXPONENT;

    /// Every three-letter code from AAA to ZZZ.
    fn all_codes() -> impl Iterator<Item = String> {
        (0..26u32 * 26 * 26).map(|n| {
            [n / 26 / 26, n / 26 % 26, n % 26]
                .map(|i| char::from(b'A' + u8::try_from(i).unwrap()))
                .iter()
                .collect()
        })
    }

    #[test]
    fn shop_currencies_are_the_iso_4217_currencies() {
        for (code, exponent) in [("USD", 2), ("EUR", 2), ("JPY", 0), ("KWD", 3), ("XOF", 0)] {
            assert_eq!(shop_currency(code).unwrap().exponent, exponent, "{code}");
        }
        for (code, why) in [
            ("QQQ", "is not an ISO 4217 currency code"),
            ("XYZ", "is not an ISO 4217 currency code"),
            ("usd", "is not an ISO 4217 currency code"),
            ("US", "is not an ISO 4217 currency code"),
            ("USDX", "is not an ISO 4217 currency code"),
            ("", "is not an ISO 4217 currency code"),
            ("XAU", "not a currency a shop sells in"),
            ("XXX", "not a currency a shop sells in"),
            ("XTS", "not a currency a shop sells in"),
            ("CLF", "fund code"),
            ("USN", "fund code"),
        ] {
            let error = shop_currency(code).unwrap_err();
            assert!(error.to_string().contains(why), "{code}: {error}");
            assert!(error.to_string().starts_with(&format!("{code:?} ")));
        }
    }

    /// The engine's exponent table (`EXPONENT_EXCEPTIONS` in engine/src/money.rs, two decimals for
    /// every other code) against ISO 4217, for every code the crate lists with a minor unit. A
    /// shop currency must agree (or the Functions would read its amounts 10, 100 or 1,000 times
    /// off); each disagreement is printed (`--nocapture`), and must be a code [`shop_currency`]
    /// refuses.
    #[test]
    fn the_engine_reads_every_shop_currency_with_its_iso_4217_decimals() {
        let mut disagreements = Vec::new();
        let mut accepted = Vec::new();
        for code in all_codes() {
            let engine = Currency::from_code(&code).unwrap();
            match Iso::from_code(&code) {
                None => {
                    assert!(shop_currency(&code).is_err(), "{code} is not in ISO 4217");
                    continue;
                }
                Some(iso) => {
                    let sells = !iso.is_fund() && !iso.is_special() && iso.exponent().is_some();
                    if let Some(exponent) = iso.exponent()
                        && u16::from(engine.exponent) != exponent
                    {
                        disagreements.push((code.clone(), sells));
                        eprintln!(
                            "{code} ({}{}): ISO 4217 {exponent} decimals, the engine {}",
                            iso.name(),
                            if iso.is_fund() { ", a fund code" } else { "" },
                            engine.exponent
                        );
                    }
                    if sells {
                        accepted.push(code);
                    } else {
                        assert!(shop_currency(&code).is_err(), "{code} is no shop currency");
                    }
                }
            }
        }
        // Measured with iso_currency 0.7.1: CLF (4 decimals) UYI (0) and UYW (4), all fund
        // codes, which are not a shop's currency.
        assert!(
            disagreements.iter().all(|(_, sells)| !sells),
            "the engine reads a shop currency with other decimals than ISO 4217: {disagreements:?}"
        );
        // Every currency a shop sells in is accepted, with the engine's (= ISO's) decimals, and
        // none has more decimals than the plan diff decodes costs with.
        assert!(accepted.len() > 150, "{}", accepted.len());
        for code in &accepted {
            let currency = shop_currency(code).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(currency.code_str(), code);
            assert!(currency.exponent <= COMPARE_EXPONENT, "{code}");
        }
    }
}
