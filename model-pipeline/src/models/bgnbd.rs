//! BG/NBD (Fader, Hardie & Lee 2005): while alive a customer buys as a Poisson process with a
//! gamma(r, alpha)-distributed rate, and after each purchase drops out with a beta(a, b)-distributed
//! probability.
//!
//! The likelihood is evaluated in one pass over the customers with its analytic gradient. The
//! gamma-function terms depend on a customer only through the frequency x, and real stores have a
//! few hundred distinct frequencies among millions of customers, so those terms are computed once
//! per distinct frequency; the per-customer work is two logarithms, one exponential and one
//! `ln_1p`. Large data sets are summed in parallel chunks with rayon.

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use statrs::function::gamma::{digamma, ln_gamma};

use super::optimize::{LogLikelihood, maximize};
use super::{CustomerSummary, Fit, ModelError, hyp2f1, validate_customer};

const MODEL: &str = "BG/NBD";

/// Below this many customers a parallel sum costs more than it saves.
const PARALLEL_THRESHOLD: usize = 20_000;

/// BG/NBD parameters: purchase rate ~ gamma(shape `r`, rate `alpha`), dropout probability
/// ~ beta(`a`, `b`). Time is in weeks, so `alpha` is in weeks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// Customers with identical (x, t_x, T), reduced to what the per-customer part of the likelihood
/// needs plus how many customers share it. Times are indices into [`Prepared::times`].
#[derive(Debug, Clone, Copy)]
struct Row {
    /// Index into [`Prepared::frequencies`].
    group: u32,
    recency: u32,
    age: u32,
    weight: f64,
    x: f64,
}

/// Customers grouped for fast likelihood evaluation.
///
/// Stores record days, so ages and recencies take a few hundred distinct values: each evaluation
/// takes ln(alpha + t) once per distinct time instead of twice per customer, and identical
/// summaries are merged into one weighted row (a million synthetic customers become 326,759 rows;
/// every customer without repeats of the same age is one row). With continuous times nothing
/// merges and the tables are as long as the data, which costs an indirection but stays correct.
struct Prepared {
    /// Distinct frequencies with the number of customers having each.
    frequencies: Vec<(f64, f64)>,
    /// Distinct recency and age values, in weeks.
    times: Vec<f64>,
    rows: Vec<Row>,
    n_customers: usize,
}

/// Index of `value` in `values`, adding it if new.
fn intern(index: &mut FxHashMap<u64, u32>, values: &mut Vec<f64>, value: f64) -> u32 {
    *index.entry(value.to_bits()).or_insert_with(|| {
        values.push(value);
        u32::try_from(values.len() - 1).unwrap_or(u32::MAX)
    })
}

impl Prepared {
    fn new(data: &[CustomerSummary]) -> Result<Self, ModelError> {
        if u32::try_from(data.len()).is_err() {
            return Err(ModelError::TooManyCustomers {
                model: MODEL,
                max: u32::MAX as usize,
                got: data.len(),
            });
        }
        // Frequencies and times become small integer ids (the maps stay small: a few hundred
        // entries on day-resolution data), then sorting the id triples brings identical
        // customers together without hashing a million keys.
        let mut x_index = FxHashMap::default();
        let mut xs = Vec::new();
        let mut time_index = FxHashMap::default();
        let mut times = Vec::new();
        let mut keys: Vec<(u32, u32, u32)> = Vec::with_capacity(data.len());
        for (index, customer) in data.iter().enumerate() {
            validate_customer(index, customer)?;
            keys.push((
                intern(&mut x_index, &mut xs, customer.frequency),
                intern(&mut time_index, &mut times, customer.recency),
                intern(&mut time_index, &mut times, customer.age),
            ));
        }
        if keys.len() >= PARALLEL_THRESHOLD {
            keys.par_sort_unstable();
        } else {
            keys.sort_unstable();
        }
        let mut frequencies: Vec<(f64, f64)> = xs.iter().map(|&x| (x, 0.0)).collect();
        let mut rows: Vec<Row> = Vec::new();
        for (group, recency, age) in keys {
            if let Some((_, count)) = frequencies.get_mut(group as usize) {
                *count += 1.0;
            }
            match rows.last_mut() {
                Some(row) if row.group == group && row.recency == recency && row.age == age => {
                    row.weight += 1.0;
                }
                _ => rows.push(Row {
                    group,
                    recency,
                    age,
                    weight: 1.0,
                    x: xs.get(group as usize).copied().unwrap_or(f64::NAN),
                }),
            }
        }
        Ok(Prepared {
            frequencies,
            times,
            rows,
            n_customers: data.len(),
        })
    }
}

/// Sufficient per-customer sums: log-likelihood and its gradient in (r, alpha, a, b).
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    value: f64,
    grad: [f64; 4],
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
        self.n_customers
    }

    fn value(&self, params: &[f64]) -> f64 {
        self.value_and_gradient(params).0
    }

    fn value_and_gradient(&self, params: &[f64]) -> (f64, Vec<f64>) {
        let &[r, alpha, a, b] = params else {
            return (f64::NAN, vec![f64::NAN; params.len()]);
        };
        let n = self.n_customers as f64;
        // Terms that depend on x only: ln Γ(r+x) - ln Γ(r) + ln B(a, b+x) - ln B(a, b).
        let (ln_gamma_r, digamma_r) = (ln_gamma(r), digamma(r));
        let (ln_gamma_b, digamma_b) = (ln_gamma(b), digamma(b));
        let (ln_gamma_ab, digamma_ab) = (ln_gamma(a + b), digamma(a + b));
        let mut total = Sums {
            value: n * r * alpha.ln(),
            grad: [n * alpha.ln(), n * r / alpha, 0.0, 0.0],
        };
        // Per distinct x: ln(a / (b + x - 1)) and 1 / (b + x - 1) for the dropout branch.
        let mut dropout_terms = Vec::with_capacity(self.frequencies.len());
        for &(x, count) in &self.frequencies {
            total.value += count
                * (ln_gamma(r + x) - ln_gamma_r + ln_gamma(b + x)
                    - ln_gamma(a + b + x)
                    - ln_gamma_b
                    + ln_gamma_ab);
            let digamma_abx = digamma(a + b + x);
            total.grad[0] += count * (digamma(r + x) - digamma_r);
            total.grad[2] += count * (digamma_ab - digamma_abx);
            total.grad[3] += count * (digamma(b + x) - digamma_b - digamma_abx + digamma_ab);
            if x > 0.0 {
                dropout_terms.push(((a / (b + x - 1.0)).ln(), 1.0 / (b + x - 1.0)));
            } else {
                dropout_terms.push((f64::NAN, f64::NAN));
            }
        }
        // ln(alpha + t) and 1 / (alpha + t) for every distinct time.
        let time_terms = |t: &f64| ((alpha + t).ln(), 1.0 / (alpha + t));
        let time_terms: Vec<(f64, f64)> = if self.times.len() >= PARALLEL_THRESHOLD {
            self.times.par_iter().map(time_terms).collect()
        } else {
            self.times.iter().map(time_terms).collect()
        };
        let time = |i: u32| {
            time_terms
                .get(i as usize)
                .copied()
                .unwrap_or((f64::NAN, f64::NAN))
        };
        let per_customer = |sums: Sums, row: &Row| -> Sums {
            let mut sums = sums;
            let rx = r + row.x;
            let w = row.weight;
            let (ln_age, inv_age) = time(row.age);
            if row.x == 0.0 {
                // Alive throughout: only the "no purchase since" term.
                sums.value -= w * rx * ln_age;
                sums.grad[0] -= w * ln_age;
                sums.grad[1] -= w * rx * inv_age;
                return sums;
            }
            let (ln_dropout, inv_bx1) = dropout_terms
                .get(row.group as usize)
                .copied()
                .unwrap_or((f64::NAN, f64::NAN));
            let (ln_recency, inv_recency) = time(row.recency);
            // ln(e^A3 + e^A4) with A3 = -(r+x) ln(alpha+T), A4 = ln(a/(b+x-1)) - (r+x) ln(alpha+t_x),
            // written as A3 + softplus(A4 - A3) so that neither exponential overflows.
            let a3 = -rx * ln_age;
            let d = ln_dropout - rx * (ln_recency - ln_age);
            let (softplus, w4) = if d > 0.0 {
                let e = (-d).exp();
                (d + e.ln_1p(), 1.0 / (1.0 + e))
            } else {
                let e = d.exp();
                (e.ln_1p(), e / (1.0 + e))
            };
            let w3 = 1.0 - w4;
            sums.value += w * (a3 + softplus);
            sums.grad[0] -= w * (w3 * ln_age + w4 * ln_recency);
            sums.grad[1] -= w * rx * (w3 * inv_age + w4 * inv_recency);
            sums.grad[2] += w * w4 / a;
            sums.grad[3] -= w * w4 * inv_bx1;
            sums
        };
        let customers = if self.rows.len() >= PARALLEL_THRESHOLD {
            self.rows
                .par_chunks(8192)
                .map(|chunk| chunk.iter().fold(Sums::default(), per_customer))
                .reduce(Sums::default, Sums::add)
        } else {
            self.rows.iter().fold(Sums::default(), per_customer)
        };
        let total = total.add(customers);
        (total.value, total.grad.to_vec())
    }
}

impl BgNbd {
    /// Fits by maximum likelihood. Needs at least one repeat buyer and one customer without
    /// repeats, or the dropout process is not identified.
    pub fn fit(data: &[CustomerSummary]) -> Result<Fit<BgNbd>, ModelError> {
        let prepared = Prepared::new(data)?;
        let repeat_buyers = data.iter().filter(|c| c.frequency > 0.0).count();
        if repeat_buyers == 0 {
            return Err(ModelError::TooFewCustomers {
                model: MODEL,
                needed: 1,
                what: "with a repeat purchase",
                got: 0,
            });
        }
        // Start where the mean purchase rate r/alpha matches the data's repeat rate, with a
        // dropout probability of about a half; the likelihood is smooth enough that this is
        // always in the basin of the optimum on the data sets tested.
        let n = data.len() as f64;
        let mean_frequency = data.iter().map(|c| c.frequency).sum::<f64>() / n;
        let mean_age = data.iter().map(|c| c.age).sum::<f64>() / n;
        let alpha_start = (mean_age / mean_frequency.max(1e-3)).clamp(1e-3, 1e6);
        let raw = maximize(&prepared, &[1.0, alpha_start, 1.0, 1.0])?;
        let &[r, alpha, a, b] = raw.params.as_slice() else {
            return Err(ModelError::Optimizer {
                model: MODEL,
                message: "wrong parameter count".into(),
            });
        };
        Ok(Fit {
            model: BgNbd { r, alpha, a, b },
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
            ("a", self.a),
            ("b", self.b),
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

    /// Total log-likelihood of `data` under these parameters.
    pub fn log_likelihood(&self, data: &[CustomerSummary]) -> Result<f64, ModelError> {
        self.check()?;
        let prepared = Prepared::new(data)?;
        Ok(prepared.value(&[self.r, self.alpha, self.a, self.b]))
    }

    /// Probability that the customer has not dropped out by the end of their window.
    ///
    /// A customer without repeat purchases is alive with probability 1 in BG/NBD (dropout can only
    /// happen right after a purchase), a known quirk of the model.
    pub fn p_alive(&self, c: &CustomerSummary) -> f64 {
        if c.frequency == 0.0 {
            return 1.0;
        }
        let odds_dead = self.dead_odds(c);
        1.0 / (1.0 + odds_dead)
    }

    /// a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x), computed in logs.
    fn dead_odds(&self, c: &CustomerSummary) -> f64 {
        if c.frequency == 0.0 {
            return 0.0;
        }
        let x = c.frequency;
        ((self.a / (self.b + x - 1.0)).ln()
            + (self.r + x) * ((self.alpha + c.age).ln() - (self.alpha + c.recency).ln()))
        .exp()
    }

    /// Expected number of repeat purchases in `t` weeks for a newly acquired customer, E[X(t)].
    pub fn expected_purchases(&self, t: f64) -> Result<f64, ModelError> {
        self.check()?;
        check_horizon(t)?;
        let (r, alpha, a, b) = (self.r, self.alpha, self.a, self.b);
        check_a_not_one(a)?;
        let hyp = hyp2f1(r, b, a + b - 1.0, t / (alpha + t))?;
        let value = (a + b - 1.0) / (a - 1.0) * (1.0 - (alpha / (alpha + t)).powf(r) * hyp);
        finite(value, "expected purchases", None)
    }

    /// Expected repeat purchases in the next `t` weeks for a customer with this history,
    /// E[Y(t) | x, t_x, T].
    pub fn conditional_expected_purchases(
        &self,
        t: f64,
        c: &CustomerSummary,
    ) -> Result<f64, ModelError> {
        self.check()?;
        check_horizon(t)?;
        validate_customer(0, c)?;
        check_a_not_one(self.a)?;
        let value = self.if_alive_expectation(t, c.frequency, c.age)? / (1.0 + self.dead_odds(c));
        finite(value, "conditional expected purchases", Some(*c))
    }

    /// E[Y(t) | x, t_x, T] without the P(alive) factor: it depends on x and T only, so
    /// [`BgNbd::score`] computes it once per distinct (x, T).
    fn if_alive_expectation(&self, t: f64, x: f64, age: f64) -> Result<f64, ModelError> {
        let (r, alpha, a, b) = (self.r, self.alpha, self.a, self.b);
        let window = alpha + age;
        let hyp = hyp2f1(r + x, b + x, a + b + x - 1.0, t / (window + t))?;
        let survival = (r + x) * (window / (window + t)).ln();
        Ok((a + b + x - 1.0) / (a - 1.0) * (1.0 - survival.exp() * hyp))
    }

    /// P(alive) and E[Y(t) | x, t_x, T] for every customer, in input order; the same values as
    /// [`BgNbd::p_alive`] and [`BgNbd::conditional_expected_purchases`], computed in parallel.
    ///
    /// The hypergeometric part depends on (x, T) only, and day-resolution data has few distinct
    /// pairs (16,182 among the benchmark's million customers), so it is computed once per pair.
    pub fn score(
        &self,
        t: f64,
        customers: &[CustomerSummary],
    ) -> Result<Vec<BgNbdScore>, ModelError> {
        self.check()?;
        check_horizon(t)?;
        check_a_not_one(self.a)?;
        for (index, customer) in customers.iter().enumerate() {
            validate_customer(index, customer)?;
        }
        let order = |p: &(f64, f64), q: &(f64, f64)| p.0.total_cmp(&q.0).then(p.1.total_cmp(&q.1));
        let mut pairs: Vec<(f64, f64)> = customers.iter().map(|c| (c.frequency, c.age)).collect();
        pairs.par_sort_unstable_by(order);
        pairs.dedup();
        let factors: Vec<f64> = pairs
            .par_iter()
            .map(|&(x, age)| self.if_alive_expectation(t, x, age))
            .collect::<Result<_, _>>()?;
        customers
            .par_iter()
            .map(|c| {
                let factor = pairs
                    .binary_search_by(|probe| order(probe, &(c.frequency, c.age)))
                    .ok()
                    .and_then(|i| factors.get(i).copied())
                    .unwrap_or(f64::NAN);
                let alive_odds = 1.0 + self.dead_odds(c);
                let score = BgNbdScore {
                    p_alive: 1.0 / alive_odds,
                    expected_purchases: factor / alive_odds,
                };
                if score.p_alive.is_finite() && score.expected_purchases.is_finite() {
                    Ok(score)
                } else {
                    Err(ModelError::NonFiniteResult {
                        what: "conditional expected purchases",
                        customer: Some(*c),
                    })
                }
            })
            .collect()
    }
}

/// One customer's BG/NBD scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbdScore {
    /// Probability the customer has not dropped out.
    pub p_alive: f64,
    /// Expected repeat purchases over the horizon.
    pub expected_purchases: f64,
}

fn check_horizon(t: f64) -> Result<(), ModelError> {
    if t.is_finite() && t >= 0.0 {
        Ok(())
    } else {
        Err(ModelError::InvalidParameter {
            model: MODEL,
            name: "horizon t",
            value: t,
            reason: "must be a non-negative number of weeks",
        })
    }
}

/// The expectation formulas divide by a - 1; at a = 1 they have a removable singularity that the
/// series form does not handle, and a fitted a lands exactly on 1 only by construction.
fn check_a_not_one(a: f64) -> Result<(), ModelError> {
    if (a - 1.0).abs() < 1e-9 {
        Err(ModelError::InvalidParameter {
            model: MODEL,
            name: "a",
            value: a,
            reason: "expectations are undefined in this form at a = 1",
        })
    } else {
        Ok(())
    }
}

fn finite(
    value: f64,
    what: &'static str,
    customer: Option<CustomerSummary>,
) -> Result<f64, ModelError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(ModelError::NonFiniteResult { what, customer })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn customer(frequency: f64, recency: f64, age: f64) -> CustomerSummary {
        CustomerSummary {
            frequency,
            recency,
            age,
            monetary: 0.0,
        }
    }

    /// Straight transcription of the paper's per-customer likelihood, to check the grouped,
    /// softplus form against.
    fn reference_ll(m: &BgNbd, c: &CustomerSummary) -> f64 {
        let (r, alpha, a, b, x) = (m.r, m.alpha, m.a, m.b, c.frequency);
        let ln_beta = |p: f64, q: f64| ln_gamma(p) + ln_gamma(q) - ln_gamma(p + q);
        let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
        let a2 = ln_beta(a, b + x) - ln_beta(a, b);
        let a3 = -(r + x) * (alpha + c.age).ln();
        let a4 = if x > 0.0 {
            (a / (b + x - 1.0)).ln() - (r + x) * (alpha + c.recency).ln()
        } else {
            f64::NEG_INFINITY
        };
        a1 + a2 + (a3.exp() + a4.exp()).ln()
    }

    fn sample() -> Vec<CustomerSummary> {
        vec![
            customer(0.0, 0.0, 38.86),
            customer(2.0, 30.43, 38.86),
            customer(1.0, 1.71, 38.86),
            customer(7.0, 29.0, 31.5),
            customer(0.0, 0.0, 12.0),
            customer(15.0, 35.0, 36.0),
            customer(1.0, 20.0, 20.0),
        ]
    }

    #[test]
    fn grouped_likelihood_equals_the_papers_formula() {
        let model = BgNbd {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        };
        let data = sample();
        let expected: f64 = data.iter().map(|c| reference_ll(&model, c)).sum();
        let got = model.log_likelihood(&data).unwrap();
        assert!((got - expected).abs() < 1e-10, "{got} vs {expected}");
    }

    #[test]
    fn analytic_gradient_matches_finite_differences() {
        let data = sample();
        let prepared = Prepared::new(&data).unwrap();
        let params = [0.5, 3.0, 1.4, 2.2];
        let (_, gradient) = prepared.value_and_gradient(&params);
        for i in 0..4 {
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

    #[test]
    fn p_alive_follows_the_closed_form() {
        let model = BgNbd {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        };
        assert_eq!(model.p_alive(&customer(0.0, 0.0, 38.86)), 1.0);
        let c = customer(2.0, 30.43, 38.86);
        let odds = 0.793 / (2.426 + 1.0) * ((4.414 + 38.86) / (4.414 + 30.43_f64)).powf(2.243);
        assert!((model.p_alive(&c) - 1.0 / (1.0 + odds)).abs() < 1e-14);
        // A recent purchase makes a customer more likely alive than an old one.
        assert!(model.p_alive(&customer(2.0, 38.0, 38.86)) > model.p_alive(&c));
    }

    /// The unconditional expectation is zero at t = 0, grows with t, and equals the conditional
    /// expectation of a customer acquired this instant (x = 0, T -> 0): two different formulas that
    /// must agree.
    #[test]
    fn expectations_are_consistent() {
        let model = BgNbd {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        };
        assert_eq!(model.expected_purchases(0.0).unwrap(), 0.0);
        let mut previous = 0.0;
        for t in [1.0, 13.0, 39.0, 78.0, 520.0] {
            let value = model.expected_purchases(t).unwrap();
            assert!(value > previous, "E[X({t})] = {value} not above {previous}");
            previous = value;
            let fresh = CustomerSummary {
                frequency: 0.0,
                recency: 0.0,
                age: 1e-12,
                monetary: 0.0,
            };
            let conditional = model.conditional_expected_purchases(t, &fresh).unwrap();
            assert!(
                (conditional - value).abs() < 1e-9 * value.max(1.0),
                "{conditional} vs {value}"
            );
        }
    }

    #[test]
    fn batch_scores_equal_one_by_one_scores() {
        let model = BgNbd {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        };
        let mut data = sample();
        data.extend(sample());
        let scores = model.score(26.0, &data).unwrap();
        assert_eq!(scores.len(), data.len());
        for (c, s) in data.iter().zip(&scores) {
            let expected = model.conditional_expected_purchases(26.0, c).unwrap();
            assert!(
                (s.expected_purchases - expected).abs() <= 1e-12 * expected,
                "{c:?}"
            );
            assert_eq!(s.p_alive, model.p_alive(c));
        }
        let bad = vec![customer(0.0, 0.0, 5.0), customer(2.0, 6.0, 5.0)];
        assert_eq!(
            model.score(26.0, &bad).unwrap_err().to_string(),
            "customer 1: recency 6 is later than age 5"
        );
    }

    #[test]
    fn rejects_bad_parameters_and_customers() {
        let bad = BgNbd {
            r: -1.0,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        };
        assert_eq!(
            bad.expected_purchases(1.0).unwrap_err().to_string(),
            "BG/NBD parameter r = -1 is invalid: must be a positive finite number"
        );
        let data = vec![customer(0.0, 0.0, 5.0), customer(1.0, 6.0, 5.0)];
        assert_eq!(
            BgNbd::fit(&data).unwrap_err().to_string(),
            "customer 1: recency 6 is later than age 5"
        );
        assert_eq!(
            BgNbd::fit(&[customer(0.0, 0.0, 5.0)])
                .unwrap_err()
                .to_string(),
            "BG/NBD needs at least 1 customers with a repeat purchase, got 0"
        );
    }

    /// Customers drawn from the BG/NBD and Gamma-Gamma processes in continuous time (so no two
    /// summaries merge and the unmerged path is exercised): the fits must recover the parameters
    /// they were drawn from within four of their own standard errors.
    #[test]
    fn fits_recover_the_parameters_of_simulated_customers() {
        use rand::{Rng, SeedableRng};
        use rand_distr::{Beta, Distribution, Exp, Gamma};

        let truth = BgNbd {
            r: 0.5,
            alpha: 6.0,
            a: 1.2,
            b: 3.5,
        };
        let spend = crate::models::GammaGamma {
            p: 4.0,
            q: 5.0,
            gamma: 8_000.0,
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let rate = Gamma::new(truth.r, 1.0 / truth.alpha).unwrap();
        let dropout = Beta::new(truth.a, truth.b).unwrap();
        let spend_rate = Gamma::new(spend.q, 1.0 / spend.gamma).unwrap();
        let data: Vec<CustomerSummary> = (0..20_000)
            .map(|_| {
                let age = rng.random_range(1.0..80.0);
                let gap = Exp::new(rate.sample(&mut rng).max(1e-12)).unwrap();
                let p = dropout.sample(&mut rng);
                let value = Gamma::new(spend.p, 1.0 / spend_rate.sample(&mut rng)).unwrap();
                let (mut t, mut last, mut x, mut total) = (0.0, 0.0, 0.0, 0.0);
                loop {
                    t += gap.sample(&mut rng);
                    if t > age {
                        break;
                    }
                    (last, x) = (t, x + 1.0);
                    total += value.sample(&mut rng);
                    if rng.random_bool(p) {
                        break;
                    }
                }
                let monetary = if x > 0.0 { total / x } else { 0.0 };
                CustomerSummary {
                    frequency: x,
                    recency: last,
                    age,
                    monetary,
                }
            })
            .collect();

        let fit = BgNbd::fit(&data).unwrap();
        assert!(fit.converged);
        let estimates = [fit.model.r, fit.model.alpha, fit.model.a, fit.model.b];
        let true_values = [truth.r, truth.alpha, truth.a, truth.b];
        for (i, name) in ["r", "alpha", "a", "b"].iter().enumerate() {
            let z = (estimates[i] - true_values[i]) / fit.standard_errors[i];
            assert!(
                z.abs() < 4.0,
                "BG/NBD {name}: {} vs {} (z = {z:.2})",
                estimates[i],
                true_values[i]
            );
        }

        let fit = crate::models::GammaGamma::fit(&data).unwrap();
        assert!(fit.converged);
        let estimates = [fit.model.p, fit.model.q, fit.model.gamma];
        let true_values = [spend.p, spend.q, spend.gamma];
        for (i, name) in ["p", "q", "gamma"].iter().enumerate() {
            let z = (estimates[i] - true_values[i]) / fit.standard_errors[i];
            assert!(
                z.abs() < 4.0,
                "Gamma-Gamma {name}: {} vs {} (z = {z:.2})",
                estimates[i],
                true_values[i]
            );
        }
    }
}
