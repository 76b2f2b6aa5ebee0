//! Pareto/NBD (Schmittlein, Morrison & Colombo 1987; likelihood as in Fader & Hardie's 2005 note):
//! purchases are Poisson with a gamma(r, alpha) rate while alive, and lifetimes are exponential
//! with a gamma(s, beta) dropout rate, so customers can leave at any time, not only after a purchase.
//!
//! It is offered as an option next to BG/NBD: its likelihood needs the hypergeometric function for
//! every customer and its gradient is taken by finite differences, so a fit costs far more. The
//! likelihood's difference of two hypergeometric terms is evaluated in logs with `expm1` because
//! for customers who bought near the end of their window the two terms nearly cancel.

use rayon::prelude::*;
use statrs::function::gamma::ln_gamma;

use super::optimize::{LogLikelihood, maximize};
use super::{CustomerSummary, Fit, ModelError, hyp2f1, validate_customer};

const MODEL: &str = "Pareto/NBD";

const PARALLEL_THRESHOLD: usize = 5_000;

/// Pareto/NBD parameters: purchase rate ~ gamma(`r`, `alpha`), dropout rate ~ gamma(`s`, `beta`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParetoNbd {
    pub r: f64,
    pub alpha: f64,
    pub s: f64,
    pub beta: f64,
}

struct Prepared(Vec<CustomerSummary>);

impl LogLikelihood for Prepared {
    const MODEL: &'static str = MODEL;
    const ANALYTIC_GRADIENT: bool = false;

    fn n_observations(&self) -> usize {
        self.0.len()
    }

    fn value(&self, params: &[f64]) -> f64 {
        let &[r, alpha, s, beta] = params else {
            return f64::NAN;
        };
        let model = ParetoNbd { r, alpha, s, beta };
        let one = |c: &CustomerSummary| model.customer_log_likelihood(c).unwrap_or(f64::NAN);
        if self.0.len() >= PARALLEL_THRESHOLD {
            self.0.par_iter().map(one).sum()
        } else {
            self.0.iter().map(one).sum()
        }
    }
}

/// ln(e^p + e^q) without overflow.
fn log_add_exp(p: f64, q: f64) -> f64 {
    let (high, low) = if p >= q { (p, q) } else { (q, p) };
    if low == f64::NEG_INFINITY {
        high
    } else {
        high + (low - high).exp().ln_1p()
    }
}

impl ParetoNbd {
    /// Fits by maximum likelihood (finite-difference gradient). Needs at least one repeat buyer.
    pub fn fit(data: &[CustomerSummary]) -> Result<Fit<ParetoNbd>, ModelError> {
        for (index, customer) in data.iter().enumerate() {
            validate_customer(index, customer)?;
        }
        if !data.iter().any(|c| c.frequency > 0.0) {
            return Err(ModelError::TooFewCustomers {
                model: MODEL,
                needed: 1,
                what: "with a repeat purchase",
                got: 0,
            });
        }
        let n = data.len() as f64;
        let mean_frequency = data.iter().map(|c| c.frequency).sum::<f64>() / n;
        let mean_age = data.iter().map(|c| c.age).sum::<f64>() / n;
        let scale_start = (mean_age / mean_frequency.max(1e-3)).clamp(1e-3, 1e6);
        let prepared = Prepared(data.to_vec());
        let raw = maximize(&prepared, &[1.0, scale_start, 1.0, scale_start])?;
        let &[r, alpha, s, beta] = raw.params.as_slice() else {
            return Err(ModelError::Optimizer {
                model: MODEL,
                message: "wrong parameter count".into(),
            });
        };
        Ok(Fit {
            model: ParetoNbd { r, alpha, s, beta },
            log_likelihood: raw.log_likelihood,
            standard_errors: raw.standard_errors,
            iterations: raw.iterations,
            converged: raw.converged,
        })
    }

    fn check(&self) -> Result<(), ModelError> {
        for (name, value) in [
            ("r", self.r),
            ("alpha", self.alpha),
            ("s", self.s),
            ("beta", self.beta),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(ModelError::InvalidParameter {
                    model: MODEL,
                    name,
                    value,
                    reason: "must be a positive finite number",
                });
            }
        }
        Ok(())
    }

    /// Total log-likelihood of `data`.
    pub fn log_likelihood(&self, data: &[CustomerSummary]) -> Result<f64, ModelError> {
        self.check()?;
        let mut total = 0.0;
        for (index, customer) in data.iter().enumerate() {
            validate_customer(index, customer)?;
            total += self.customer_log_likelihood(customer)?;
        }
        Ok(total)
    }

    /// ln A0, the log of the likelihood's "died somewhere in (t_x, T]" integral without the
    /// s / (r+s+x) factor; -inf when t_x = T.
    fn ln_a0(&self, c: &CustomerSummary) -> Result<f64, ModelError> {
        let (r, alpha, s, beta, x) = (self.r, self.alpha, self.s, self.beta, c.frequency);
        let rsx = r + s + x;
        // Expand around the larger of alpha and beta so the hypergeometric argument is in [0, 1).
        let (scale, second) = if alpha >= beta {
            (alpha, s + 1.0)
        } else {
            (beta, r + x)
        };
        let gap = (alpha - beta).abs();
        let term = |u: f64| -> Result<f64, ModelError> {
            let hyp = hyp2f1(rsx, second, rsx + 1.0, gap / (scale + u))?;
            Ok(hyp.ln() - rsx * (scale + u).ln())
        };
        let at_recency = term(c.recency)?;
        let at_age = term(c.age)?;
        // at_recency >= at_age mathematically; a tiny negative difference is rounding.
        let difference = at_age - at_recency;
        if difference >= 0.0 {
            return Ok(f64::NEG_INFINITY);
        }
        Ok(at_recency + (-difference.exp_m1()).ln())
    }

    fn customer_log_likelihood(&self, c: &CustomerSummary) -> Result<f64, ModelError> {
        let (r, alpha, s, beta, x) = (self.r, self.alpha, self.s, self.beta, c.frequency);
        let head = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + s * beta.ln();
        let alive = -(r + x) * (alpha + c.age).ln() - s * (beta + c.age).ln();
        let died = (s / (r + s + x)).ln() + self.ln_a0(c)?;
        Ok(head + log_add_exp(alive, died))
    }

    /// Probability that the customer is still alive at the end of their window.
    pub fn p_alive(&self, c: &CustomerSummary) -> Result<f64, ModelError> {
        self.check()?;
        validate_customer(0, c)?;
        let (r, alpha, s, beta, x) = (self.r, self.alpha, self.s, self.beta, c.frequency);
        let ln_odds_dead = (s / (r + s + x)).ln()
            + (r + x) * (alpha + c.age).ln()
            + s * (beta + c.age).ln()
            + self.ln_a0(c)?;
        Ok(1.0 / (1.0 + ln_odds_dead.exp()))
    }

    /// Expected repeat purchases in the next `t` weeks given the customer's history.
    pub fn conditional_expected_purchases(
        &self,
        t: f64,
        c: &CustomerSummary,
    ) -> Result<f64, ModelError> {
        if !(t.is_finite() && t >= 0.0) {
            return Err(ModelError::InvalidParameter {
                model: MODEL,
                name: "horizon t",
                value: t,
                reason: "must be a non-negative number of weeks",
            });
        }
        let p_alive = self.p_alive(c)?;
        let (r, alpha, s, beta, x) = (self.r, self.alpha, self.s, self.beta, c.frequency);
        // (1 - ((beta+T)/(beta+T+t))^(s-1)) / (s-1), whose limit at s = 1 is ln((beta+T+t)/(beta+T)).
        let log_growth = ((beta + c.age + t) / (beta + c.age)).ln();
        let lifetime_factor = if (s - 1.0).abs() < 1e-10 {
            log_growth
        } else {
            -(-(s - 1.0) * log_growth).exp_m1() / (s - 1.0)
        };
        let value = (r + x) * (beta + c.age) / (alpha + c.age) * lifetime_factor * p_alive;
        if value.is_finite() {
            Ok(value)
        } else {
            Err(ModelError::NonFiniteResult {
                what: "Pareto/NBD conditional expected purchases",
                customer: Some(*c),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn customer(frequency: f64, recency: f64, age: f64) -> CustomerSummary {
        CustomerSummary {
            frequency,
            recency,
            age,
            monetary: 0.0,
        }
    }

    /// The likelihood integrates the dropout time out analytically; integrating it numerically
    /// instead (the customer dies at tau ~ exp(mu) with mu ~ gamma(s, beta)) must give the same
    /// value. For x = 0 the closed form needs only gamma integrals:
    /// L = (alpha/(alpha+T))^r (beta/(beta+T))^s + integral over tau in (0, T) of
    /// (alpha/(alpha+tau))^r s beta^s / (beta+tau)^(s+1) d tau.
    #[test]
    fn zero_frequency_likelihood_matches_numerical_integration() {
        let model = ParetoNbd {
            r: 0.553,
            alpha: 10.578,
            s: 0.606,
            beta: 11.669,
        };
        let (r, alpha, s, beta) = (model.r, model.alpha, model.s, model.beta);
        let age = 30.0;
        let steps = 200_000;
        let h = age / steps as f64;
        // Midpoint rule on the dropout-time density.
        let integral: f64 = (0..steps)
            .map(|i| {
                let tau = (i as f64 + 0.5) * h;
                (alpha / (alpha + tau)).powf(r) * s * beta.powf(s) / (beta + tau).powf(s + 1.0) * h
            })
            .sum();
        let expected =
            ((alpha / (alpha + age)).powf(r) * (beta / (beta + age)).powf(s) + integral).ln();
        let got = model.log_likelihood(&[customer(0.0, 0.0, age)]).unwrap();
        assert!((got - expected).abs() < 1e-8, "{got} vs {expected}");
        // Both branches of the hypergeometric expansion (alpha >= beta and alpha < beta).
        let swapped = ParetoNbd {
            alpha: 15.0,
            beta: 3.0,
            ..model
        };
        let steps_integral: f64 = (0..steps)
            .map(|i| {
                let tau = (i as f64 + 0.5) * h;
                (15.0 / (15.0 + tau)).powf(r) * s * 3.0_f64.powf(s) / (3.0 + tau).powf(s + 1.0) * h
            })
            .sum();
        let expected =
            ((15.0 / (15.0 + age)).powf(r) * (3.0 / (3.0 + age)).powf(s) + steps_integral).ln();
        let got = swapped.log_likelihood(&[customer(0.0, 0.0, age)]).unwrap();
        assert!((got - expected).abs() < 1e-8, "{got} vs {expected}");
    }

    #[test]
    fn recent_buyers_are_more_alive_and_expected_purchases_grow_with_the_horizon() {
        let model = ParetoNbd {
            r: 0.553,
            alpha: 10.578,
            s: 0.606,
            beta: 11.669,
        };
        let recent = customer(3.0, 37.0, 38.0);
        let old = customer(3.0, 5.0, 38.0);
        assert!(model.p_alive(&recent).unwrap() > model.p_alive(&old).unwrap());
        assert!((model.p_alive(&customer(3.0, 38.0, 38.0)).unwrap() - 1.0).abs() < 1e-12);
        let short = model.conditional_expected_purchases(10.0, &recent).unwrap();
        let long = model.conditional_expected_purchases(52.0, &recent).unwrap();
        assert!(0.0 < short && short < long, "{short} {long}");
        let at_one = ParetoNbd { s: 1.0, ..model };
        let near_one = ParetoNbd {
            s: 1.0 + 1e-7,
            ..model
        };
        let a = at_one
            .conditional_expected_purchases(52.0, &recent)
            .unwrap();
        let b = near_one
            .conditional_expected_purchases(52.0, &recent)
            .unwrap();
        assert!((a - b).abs() < 1e-5 * a, "{a} vs {b}");
    }
}
