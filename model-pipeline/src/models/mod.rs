//! Customer-value models fitted by maximum likelihood: BG/NBD (purchase process and dropout),
//! Gamma-Gamma (spend per transaction), Pareto/NBD (an alternative purchase process), and the
//! discounted customer lifetime value built from them.
//!
//! Every model works on one [`CustomerSummary`] per customer: repeat purchases, recency and age in
//! weeks, and the mean value of the repeat transactions. Fits maximise the exact log-likelihood with
//! argmin's L-BFGS on log-parameters (so every parameter stays positive without constraints), using
//! analytic gradients for BG/NBD and Gamma-Gamma. Standard errors come from the inverse of a
//! finite-difference Hessian of the gradient at the optimum.
//!
//! What this module deliberately does not do: it does not group orders into transactions or pick a
//! calibration window (the caller builds the summaries), it adds no regularisation penalty (the fits
//! are checked against the published CDNOW estimates, which are unpenalised), and it does not depend
//! on a hypergeometric-function crate: the crates available were measured to return wrong values
//! silently, so [`hyp2f1`] is implemented here with an explicit convergence check.

mod bgnbd;
mod clv;
mod gamma_gamma;
mod hyp2f1;
mod optimize;
mod pareto_nbd;

pub use bgnbd::{BgNbd, BgNbdScore};
pub use clv::{WEEKS_PER_MONTH, clv, clv_at_value};
pub use gamma_gamma::GammaGamma;
pub use hyp2f1::hyp2f1;
pub use pareto_nbd::ParetoNbd;

/// One customer's repeat-purchase summary.
///
/// Time is in weeks (fractional), money in the shop's minor units. A transaction is everything a
/// customer bought on one day; the first transaction starts the customer's clock and is not counted
/// as a repeat purchase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CustomerSummary {
    /// `x`: number of repeat transactions in the calibration window (a whole number).
    pub frequency: f64,
    /// `t_x`: time from the first transaction to the last one, in weeks (0 without repeats).
    pub recency: f64,
    /// `T`: time from the first transaction to the end of the calibration window, in weeks.
    pub age: f64,
    /// Mean value of the repeat transactions in minor units; 0 if there are none.
    pub monetary: f64,
}

/// A fitted model with the figures needed to judge the fit.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit<M> {
    /// The parameters at the maximum of the likelihood.
    pub model: M,
    /// Total log-likelihood of the data at `model` (not averaged).
    pub log_likelihood: f64,
    /// Asymptotic standard errors of the parameters, in the order the model declares them.
    pub standard_errors: Vec<f64>,
    /// Optimizer iterations used.
    pub iterations: u64,
    /// Whether the optimizer stopped on its convergence tolerances rather than its iteration cap.
    pub converged: bool,
}

/// Why a model could not be fitted or evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("customer {index}: {reason}")]
    InvalidCustomer { index: usize, reason: String },
    #[error("{model} needs at least {needed} customers {what}, got {got}")]
    TooFewCustomers {
        model: &'static str,
        needed: usize,
        what: &'static str,
        got: usize,
    },
    #[error("{model} supports at most {max} customers in one fit, got {got}")]
    TooManyCustomers {
        model: &'static str,
        max: usize,
        got: usize,
    },
    #[error("{model} parameter {name} = {value} is invalid: {reason}")]
    InvalidParameter {
        model: &'static str,
        name: &'static str,
        value: f64,
        reason: &'static str,
    },
    #[error("{model} fit failed in the optimizer: {message}")]
    Optimizer {
        model: &'static str,
        message: String,
    },
    #[error("{model} log-likelihood is not finite at the optimizer's result")]
    NonFiniteLikelihood { model: &'static str },
    #[error(
        "{model}: the hessian at the optimum is not positive definite, so the data does not identify the parameters"
    )]
    NotIdentified { model: &'static str },
    #[error("hypergeometric 2F1({a}, {b}; {c}; {z}) is outside the supported domain: {reason}")]
    Hyp2f1Domain {
        a: f64,
        b: f64,
        c: f64,
        z: f64,
        reason: &'static str,
    },
    #[error("hypergeometric 2F1({a}, {b}; {c}; {z}) did not converge: {reason}")]
    Hyp2f1NoConvergence {
        a: f64,
        b: f64,
        c: f64,
        z: f64,
        reason: &'static str,
    },
    #[error("{what} is not finite for customer {customer:?}")]
    NonFiniteResult {
        what: &'static str,
        customer: Option<CustomerSummary>,
    },
}

/// Checks one summary: finite, non-negative, whole-number frequency, recency within age, and no
/// recency without repeat purchases. Models rely on these to keep every logarithm defined.
pub(crate) fn validate_customer(index: usize, c: &CustomerSummary) -> Result<(), ModelError> {
    let bad = |reason: String| Err(ModelError::InvalidCustomer { index, reason });
    let fields = [
        ("frequency", c.frequency),
        ("recency", c.recency),
        ("age", c.age),
        ("monetary", c.monetary),
    ];
    for (name, value) in fields {
        if !value.is_finite() {
            return bad(format!("{name} is {value}, not a finite number"));
        }
        if value < 0.0 {
            return bad(format!("{name} is {value}, below zero"));
        }
    }
    if c.frequency.fract() != 0.0 {
        return bad(format!(
            "frequency is {}, not a whole number of repeat transactions",
            c.frequency
        ));
    }
    if c.age <= 0.0 {
        return bad("age is 0: a customer's window must have some length".to_owned());
    }
    if c.recency > c.age {
        return bad(format!("recency {} is later than age {}", c.recency, c.age));
    }
    if c.frequency == 0.0 && c.recency != 0.0 {
        return bad(format!(
            "recency is {} but there are no repeat transactions",
            c.recency
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    #[test]
    fn validation_names_the_customer_and_the_field() {
        let cases = [
            (
                CustomerSummary {
                    frequency: 1.5,
                    recency: 1.0,
                    age: 2.0,
                    monetary: 1.0,
                },
                "customer 7: frequency is 1.5, not a whole number of repeat transactions",
            ),
            (
                CustomerSummary {
                    frequency: 1.0,
                    recency: 3.0,
                    age: 2.0,
                    monetary: 1.0,
                },
                "customer 7: recency 3 is later than age 2",
            ),
            (
                CustomerSummary {
                    frequency: 0.0,
                    recency: 1.0,
                    age: 2.0,
                    monetary: 0.0,
                },
                "customer 7: recency is 1 but there are no repeat transactions",
            ),
            (
                CustomerSummary {
                    frequency: 0.0,
                    recency: 0.0,
                    age: f64::NAN,
                    monetary: 0.0,
                },
                "customer 7: age is NaN, not a finite number",
            ),
            (
                CustomerSummary {
                    frequency: 0.0,
                    recency: 0.0,
                    age: 0.0,
                    monetary: 0.0,
                },
                "customer 7: age is 0: a customer's window must have some length",
            ),
        ];
        for (customer, message) in cases {
            let err = validate_customer(7, &customer).unwrap_err();
            assert_eq!(err.to_string(), message);
        }
        let fine = CustomerSummary {
            frequency: 2.0,
            recency: 1.0,
            age: 2.0,
            monetary: 5.0,
        };
        assert_eq!(validate_customer(0, &fine), Ok(()));
    }

    /// Predictions of lifetimes 0.11.3 (scipy's hyp2f1, its own Pareto/NBD code) for the published
    /// CDNOW parameters on a grid of histories, written by `testdata/lifetimes_reference.py`: an
    /// independent implementation of the same formulas.
    #[test]
    fn predictions_match_lifetimes() {
        let bgnbd = BgNbd {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        };
        let pareto = ParetoNbd {
            r: 0.553,
            alpha: 10.578,
            s: 0.606,
            beta: 11.669,
        };
        let close = |got: f64, want: f64| (got - want).abs() <= 1e-9 * want.abs().max(1e-12);
        let table = include_str!("testdata/lifetimes_reference.csv");
        let mut checked = 0;
        for (line_no, line) in table.lines().enumerate().skip(1) {
            let fields: Vec<&str> = line.split(',').collect();
            let number = |i: usize| -> f64 { fields[i].parse().unwrap() };
            let (t, c) = (
                number(1),
                CustomerSummary {
                    frequency: number(2),
                    recency: number(3),
                    age: number(4),
                    monetary: 0.0,
                },
            );
            let expected = number(6);
            let (p_alive, predicted) = match fields[0] {
                "bgnbd" => (
                    Some(bgnbd.p_alive(&c)),
                    bgnbd.conditional_expected_purchases(t, &c).unwrap(),
                ),
                "pareto_nbd" => (
                    Some(pareto.p_alive(&c).unwrap()),
                    pareto.conditional_expected_purchases(t, &c).unwrap(),
                ),
                "bgnbd_unconditional" => (None, bgnbd.expected_purchases(t).unwrap()),
                other => panic!("line {}: unknown model {other}", line_no + 1),
            };
            if let Some(p) = p_alive {
                assert!(
                    close(p, number(5)),
                    "line {}: P(alive) {p} vs {}",
                    line_no + 1,
                    number(5)
                );
            }
            assert!(
                close(predicted, expected),
                "line {}: expected purchases {predicted} vs {expected}",
                line_no + 1
            );
            checked += 1;
        }
        assert_eq!(checked, 341);
    }
}
