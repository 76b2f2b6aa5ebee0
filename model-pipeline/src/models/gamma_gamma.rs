//! Gamma-Gamma spend model (Fader & Hardie 2013): a customer's transaction values are gamma(p, nu)
//! around their own mean, and nu varies across customers as gamma(q, gamma).
//!
//! Only repeat buyers enter the fit: the first purchase is excluded from the mean value (it is
//! often unlike later ones), so customers without repeats carry no information about spend. The
//! model assumes spend is independent of purchase frequency; checking that is the caller's concern.

use rayon::prelude::*;
use statrs::function::gamma::{digamma, ln_gamma};

use super::optimize::{LogLikelihood, maximize};
use super::{CustomerSummary, Fit, ModelError, validate_customer};

const MODEL: &str = "Gamma-Gamma";

const PARALLEL_THRESHOLD: usize = 20_000;

/// Gamma-Gamma parameters. `gamma` is in the same money unit as the summaries' `monetary`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
}

/// A repeat buyer: x repeat transactions with mean value m.
#[derive(Debug, Clone, Copy)]
struct Buyer {
    x: f64,
    ln_x: f64,
    m: f64,
    ln_m: f64,
}

/// Repeat buyers, with the distinct frequencies and their counts: the gamma-function terms depend
/// on a buyer through x only, so they are evaluated once per distinct x.
struct Prepared {
    buyers: Vec<Buyer>,
    frequencies: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    value: f64,
    grad: [f64; 3],
}

impl Sums {
    fn add(mut self, other: Sums) -> Sums {
        self.value += other.value;
        for (g, o) in self.grad.iter_mut().zip(other.grad) {
            *g += o;
        }
        self
    }
}

impl LogLikelihood for Prepared {
    const MODEL: &'static str = MODEL;
    const ANALYTIC_GRADIENT: bool = true;

    fn n_observations(&self) -> usize {
        self.buyers.len()
    }

    fn value(&self, params: &[f64]) -> f64 {
        self.value_and_gradient(params).0
    }

    /// Per buyer: ln Γ(px+q) - ln Γ(px) - ln Γ(q) + q ln γ + (px-1) ln m + px ln x - (px+q) ln(γ+mx).
    fn value_and_gradient(&self, params: &[f64]) -> (f64, Vec<f64>) {
        let &[p, q, gamma] = params else {
            return (f64::NAN, vec![f64::NAN; params.len()]);
        };
        let n = self.buyers.len() as f64;
        let ln_gamma_scale = gamma.ln();
        let mut total = Sums {
            value: n * (q * ln_gamma_scale - ln_gamma(q)),
            grad: [0.0, n * (ln_gamma_scale - digamma(q)), n * q / gamma],
        };
        for &(x, count) in &self.frequencies {
            let px = p * x;
            let digamma_pxq = digamma(px + q);
            total.value += count * (ln_gamma(px + q) - ln_gamma(px));
            total.grad[0] += count * x * (digamma_pxq - digamma(px));
            total.grad[1] += count * digamma_pxq;
        }
        let per_buyer = |mut sums: Sums, buyer: &Buyer| -> Sums {
            let px = p * buyer.x;
            let spend = gamma + buyer.m * buyer.x;
            let ln_spend = spend.ln();
            sums.value += (px - 1.0) * buyer.ln_m + px * buyer.ln_x - (px + q) * ln_spend;
            sums.grad[0] += buyer.x * (buyer.ln_m + buyer.ln_x - ln_spend);
            sums.grad[1] -= ln_spend;
            sums.grad[2] -= (px + q) / spend;
            sums
        };
        let buyers = if self.buyers.len() >= PARALLEL_THRESHOLD {
            self.buyers
                .par_chunks(8192)
                .map(|chunk| chunk.iter().fold(Sums::default(), per_buyer))
                .reduce(Sums::default, Sums::add)
        } else {
            self.buyers.iter().fold(Sums::default(), per_buyer)
        };
        let total = total.add(buyers);
        (total.value, total.grad.to_vec())
    }
}

impl Prepared {
    fn new(data: &[CustomerSummary]) -> Result<Self, ModelError> {
        let mut buyers = Vec::new();
        for (index, customer) in data.iter().enumerate() {
            validate_customer(index, customer)?;
            if customer.frequency == 0.0 {
                continue;
            }
            if customer.monetary <= 0.0 {
                return Err(ModelError::InvalidCustomer {
                    index,
                    reason: format!(
                        "a repeat buyer's mean transaction value must be above zero, got {}",
                        customer.monetary
                    ),
                });
            }
            buyers.push(Buyer {
                x: customer.frequency,
                ln_x: customer.frequency.ln(),
                m: customer.monetary,
                ln_m: customer.monetary.ln(),
            });
        }
        let mut xs: Vec<f64> = buyers.iter().map(|b| b.x).collect();
        xs.sort_unstable_by(f64::total_cmp);
        let mut frequencies: Vec<(f64, f64)> = Vec::new();
        for x in xs {
            match frequencies.last_mut() {
                Some((last, count)) if *last == x => *count += 1.0,
                _ => frequencies.push((x, 1.0)),
            }
        }
        Ok(Prepared {
            buyers,
            frequencies,
        })
    }
}

impl GammaGamma {
    /// Fits by maximum likelihood on the repeat buyers in `data` (customers with frequency 0 are
    /// skipped). Needs at least three repeat buyers, one per parameter.
    pub fn fit(data: &[CustomerSummary]) -> Result<Fit<GammaGamma>, ModelError> {
        let prepared = Prepared::new(data)?;
        let n = prepared.buyers.len();
        if n < 3 {
            return Err(ModelError::TooFewCustomers {
                model: MODEL,
                needed: 3,
                what: "with a repeat purchase and a positive mean value",
                got: n,
            });
        }
        // With p = 1 and q = 2 the population mean spend p gamma / (q - 1) equals gamma, so
        // starting gamma at the sample mean puts the scale right whatever the money unit is.
        let mean = prepared.buyers.iter().map(|b| b.m).sum::<f64>() / n as f64;
        let raw = maximize(&prepared, &[1.0, 2.0, mean])?;
        let &[p, q, gamma] = raw.params.as_slice() else {
            return Err(ModelError::Optimizer {
                model: MODEL,
                message: "wrong parameter count".into(),
            });
        };
        Ok(Fit {
            model: GammaGamma { p, q, gamma },
            log_likelihood: raw.log_likelihood,
            standard_errors: raw.standard_errors,
            iterations: raw.iterations,
            converged: raw.converged,
        })
    }

    /// Total log-likelihood of the repeat buyers in `data`.
    pub fn log_likelihood(&self, data: &[CustomerSummary]) -> Result<f64, ModelError> {
        Ok(Prepared::new(data)?.value(&[self.p, self.q, self.gamma]))
    }

    /// The population's mean transaction value, p gamma / (q - 1): what the model expects of a
    /// customer it has no spend for (needs q > 1, as [`GammaGamma::expected_average_value`]).
    pub fn population_mean(&self) -> Result<f64, ModelError> {
        self.expected_average_value(&CustomerSummary {
            frequency: 0.0,
            recency: 0.0,
            age: 1.0,
            monetary: 0.0,
        })
    }

    /// Expected mean transaction value for this customer, E[M | p, q, gamma, m_x, x]: a weighted
    /// average of the population mean and the customer's own mean, weighted by x. For a customer
    /// without repeats it is the population mean p gamma / (q - 1).
    ///
    /// Needs q > 1 (otherwise the population mean is infinite); returns an error then.
    pub fn expected_average_value(&self, c: &CustomerSummary) -> Result<f64, ModelError> {
        if !(self.q > 1.0 && self.q.is_finite()) {
            return Err(ModelError::InvalidParameter {
                model: MODEL,
                name: "q",
                value: self.q,
                reason: "must be above 1 for the mean spend to exist",
            });
        }
        let x = c.frequency;
        let value = self.p * (self.gamma + x * c.monetary) / (self.p * x + self.q - 1.0);
        if value.is_finite() {
            Ok(value)
        } else {
            Err(ModelError::NonFiniteResult {
                what: "expected average value",
                customer: Some(*c),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn buyer(frequency: f64, monetary: f64) -> CustomerSummary {
        CustomerSummary {
            frequency,
            recency: 1.0,
            age: 10.0,
            monetary,
        }
    }

    #[test]
    fn analytic_gradient_matches_finite_differences() {
        let data = vec![
            buyer(1.0, 12.0),
            buyer(3.0, 40.5),
            buyer(2.0, 8.25),
            buyer(9.0, 22.0),
        ];
        let prepared = Prepared::new(&data).unwrap();
        let params = [4.0, 3.0, 17.0];
        let (_, gradient) = prepared.value_and_gradient(&params);
        for i in 0..3 {
            let h = 1e-6;
            let mut up = params;
            up[i] += h;
            let mut down = params;
            down[i] -= h;
            let numeric = (prepared.value(&up) - prepared.value(&down)) / (2.0 * h);
            assert!(
                (gradient[i] - numeric).abs() < 1e-6 * numeric.abs().max(1.0),
                "parameter {i}: analytic {} numeric {numeric}",
                gradient[i]
            );
        }
    }

    /// For one transaction (x = 1) the mean value m has a compound gamma density, which integrates
    /// to 1: a numerical integral of exp(ll) over m checks the normalising constants.
    #[test]
    fn single_transaction_density_integrates_to_one() {
        let model = GammaGamma {
            p: 6.25,
            q: 3.74,
            gamma: 15.44,
        };
        let step = 0.01;
        let total: f64 = (1..200_000)
            .map(|i| {
                let m = i as f64 * step;
                model.log_likelihood(&[buyer(1.0, m)]).unwrap().exp() * step
            })
            .sum();
        assert!((total - 1.0).abs() < 1e-3, "density integrates to {total}");
    }

    #[test]
    fn expected_value_shrinks_towards_the_population_mean() {
        let model = GammaGamma {
            p: 6.25,
            q: 3.74,
            gamma: 15.44,
        };
        let population = 6.25 * 15.44 / 2.74;
        let nobody = CustomerSummary {
            frequency: 0.0,
            recency: 0.0,
            age: 5.0,
            monetary: 0.0,
        };
        assert!((model.expected_average_value(&nobody).unwrap() - population).abs() < 1e-12);
        let big = model.expected_average_value(&buyer(1.0, 100.0)).unwrap();
        let bigger = model.expected_average_value(&buyer(20.0, 100.0)).unwrap();
        assert!(
            population < big && big < bigger && bigger < 100.0,
            "{population} {big} {bigger}"
        );
    }

    #[test]
    fn refuses_non_positive_spend_and_too_few_buyers() {
        let data = vec![buyer(1.0, 12.0), buyer(2.0, 0.0)];
        assert_eq!(
            GammaGamma::fit(&data).unwrap_err().to_string(),
            "customer 1: a repeat buyer's mean transaction value must be above zero, got 0"
        );
        assert_eq!(
            GammaGamma::fit(&[buyer(1.0, 12.0)])
                .unwrap_err()
                .to_string(),
            "Gamma-Gamma needs at least 3 customers with a repeat purchase and a positive mean value, got 1"
        );
    }
}
