//! Shared maximum-likelihood machinery: argmin's L-BFGS on log-parameters and standard errors from
//! a finite-difference Hessian.
//!
//! Optimising `ln θ` instead of `θ` keeps every parameter positive without bounds and puts
//! parameters of very different scales (a Gamma-Gamma scale in minor units next to a shape near 1)
//! on comparable footing, which is what lets one default tolerance serve every model.

use std::sync::Mutex;

use argmin::core::{CostFunction, Executor, Gradient, State, TerminationReason, TerminationStatus};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;

use super::ModelError;

/// A log-likelihood in natural (positive) parameters.
pub(crate) trait LogLikelihood: Sync {
    /// Model name used in error messages.
    const MODEL: &'static str;

    /// Whether [`LogLikelihood::value_and_gradient`] is analytic (exact to rounding) rather than
    /// the default finite differences; decides how the Hessian is differenced.
    const ANALYTIC_GRADIENT: bool;

    /// Number of observations the likelihood sums over; the optimizer works on the mean so that its
    /// tolerances do not depend on the data size.
    fn n_observations(&self) -> usize;

    /// Total log-likelihood at `params`, or NaN/-inf where it is not defined.
    fn value(&self, params: &[f64]) -> f64;

    /// Total log-likelihood and its gradient in natural parameters. The default uses central
    /// differences on [`LogLikelihood::value`]; models with an analytic gradient override it.
    fn value_and_gradient(&self, params: &[f64]) -> (f64, Vec<f64>) {
        let value = self.value(params);
        let mut gradient = Vec::with_capacity(params.len());
        let mut shifted = params.to_vec();
        for (i, &theta) in params.iter().enumerate() {
            // A relative step balances truncation (step^2) against rounding (eps / step).
            let step = 1e-6 * theta.abs().max(1e-8);
            let mut at = |v: f64| {
                if let Some(slot) = shifted.get_mut(i) {
                    *slot = v;
                }
                self.value(&shifted)
            };
            let up = at(theta + step);
            let down = at(theta - step);
            at(theta);
            gradient.push((up - down) / (2.0 * step));
        }
        (value, gradient)
    }
}

/// What [`maximize`] found, before the caller wraps it into a typed [`super::Fit`].
pub(crate) struct RawFit {
    pub params: Vec<f64>,
    pub log_likelihood: f64,
    pub standard_errors: Vec<f64>,
    pub iterations: u64,
    pub converged: bool,
}

/// The argmin problem: mean negative log-likelihood over log-parameters. argmin asks for the cost
/// and the gradient at the same point separately; both come from one pass over the data, so the
/// last evaluation is cached.
struct Problem<'a, L> {
    likelihood: &'a L,
    n: f64,
    cache: Mutex<Option<Evaluation>>,
}

/// One evaluation of the argmin problem: log-parameters, cost and gradient.
struct Evaluation {
    log_params: Vec<f64>,
    cost: f64,
    gradient: Vec<f64>,
}

impl<L: LogLikelihood> Problem<'_, L> {
    fn evaluate(&self, log_params: &[f64]) -> (f64, Vec<f64>) {
        if let Ok(cache) = self.cache.lock()
            && let Some(last) = cache.as_ref()
            && last.log_params.as_slice() == log_params
        {
            return (last.cost, last.gradient.clone());
        }
        let params: Vec<f64> = log_params.iter().map(|v| v.exp()).collect();
        let (value, gradient) = self.likelihood.value_and_gradient(&params);
        let cost = -value / self.n;
        // Chain rule for θ = exp(φ): d/dφ = θ d/dθ.
        let grad: Vec<f64> = gradient
            .iter()
            .zip(&params)
            .map(|(g, theta)| -g * theta / self.n)
            .collect();
        // Outside the likelihood's domain (overflow at extreme trial steps) report a huge but
        // finite cost with a gradient pointing back, so the line search shortens its step instead
        // of aborting on NaN.
        let (cost, grad) = if cost.is_finite() && grad.iter().all(|g| g.is_finite()) {
            (cost, grad)
        } else {
            (
                f64::MAX / 4.0,
                log_params.iter().map(|p| p.signum()).collect(),
            )
        };
        if let Ok(mut cache) = self.cache.lock() {
            *cache = Some(Evaluation {
                log_params: log_params.to_vec(),
                cost,
                gradient: grad.clone(),
            });
        }
        (cost, grad)
    }
}

impl<L: LogLikelihood> CostFunction for Problem<'_, L> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, param: &Self::Param) -> Result<Self::Output, argmin::core::Error> {
        Ok(self.evaluate(param).0)
    }
}

impl<L: LogLikelihood> Gradient for Problem<'_, L> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, param: &Self::Param) -> Result<Self::Gradient, argmin::core::Error> {
        Ok(self.evaluate(param).1)
    }
}

/// Maximises `likelihood` from `start` (natural parameters, all positive).
pub(crate) fn maximize<L: LogLikelihood>(
    likelihood: &L,
    start: &[f64],
) -> Result<RawFit, ModelError> {
    let model = L::MODEL;
    let optimizer = |message: String| ModelError::Optimizer { model, message };
    let problem = Problem {
        likelihood,
        n: likelihood.n_observations().max(1) as f64,
        cache: Mutex::new(None),
    };
    let init: Vec<f64> = start.iter().map(|v| v.ln()).collect();
    // Tolerances on the mean negative log-likelihood in log-parameters. Tighter ones were measured
    // to add dozens of line-search steps that only chase rounding noise (the cost stops changing in
    // its 14th digit) without moving any parameter in its 7th.
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), 10)
        .with_tolerance_grad(1e-7)
        .and_then(|s| s.with_tolerance_cost(1e-12))
        .map_err(|e| optimizer(e.to_string()))?;
    let result = Executor::new(problem, solver)
        .configure(|state| state.param(init).max_iters(1000))
        .run()
        .map_err(|e| optimizer(e.to_string()))?;
    let state = result.state();
    let log_params = state
        .get_best_param()
        .ok_or_else(|| optimizer("no parameters returned".to_owned()))?;
    let params: Vec<f64> = log_params.iter().map(|v| v.exp()).collect();
    let converged = matches!(
        state.get_termination_status(),
        TerminationStatus::Terminated(TerminationReason::SolverConverged)
    );
    let iterations = state.get_iter();
    let (log_likelihood, gradient) = likelihood.value_and_gradient(&params);
    if !log_likelihood.is_finite() || params.iter().any(|p| !p.is_finite()) {
        return Err(ModelError::NonFiniteLikelihood { model });
    }
    let standard_errors = standard_errors(likelihood, &params, &gradient)?;
    Ok(RawFit {
        params,
        log_likelihood,
        standard_errors,
        iterations,
        converged,
    })
}

/// Standard errors: square roots of the diagonal of the inverse observed information, the Hessian
/// of the negative log-likelihood, built from differences of the gradient.
///
/// With an analytic gradient, forward differences with a relative step of 1e-6: one pass over the
/// data per parameter instead of two, with a truncation error far below what a standard error is
/// read to. A finite-difference gradient is itself noisy at that scale, so it gets central
/// differences with a wider step instead.
fn standard_errors<L: LogLikelihood>(
    likelihood: &L,
    params: &[f64],
    gradient: &[f64],
) -> Result<Vec<f64>, ModelError> {
    let k = params.len();
    let mut hessian = vec![vec![0.0; k]; k];
    let mut shifted = params.to_vec();
    let mut gradient_at = |j: usize, value: f64| {
        if let Some(slot) = shifted.get_mut(j) {
            *slot = value;
        }
        likelihood.value_and_gradient(&shifted).1
    };
    for j in 0..k {
        let theta = params.get(j).copied().unwrap_or(1.0);
        let (up, down, width) = if L::ANALYTIC_GRADIENT {
            let step = 1e-6 * theta.abs().max(1e-8);
            (gradient_at(j, theta + step), gradient.to_vec(), step)
        } else {
            let step = 1e-4 * theta.abs().max(1e-8);
            (
                gradient_at(j, theta + step),
                gradient_at(j, theta - step),
                2.0 * step,
            )
        };
        gradient_at(j, theta);
        for (i, (u, d)) in up.iter().zip(&down).enumerate() {
            if let Some(cell) = hessian.get_mut(i).and_then(|row| row.get_mut(j)) {
                *cell = -(u - d) / width;
            }
        }
    }
    // Finite differences leave small asymmetries; the information matrix is symmetric.
    let symmetric: Vec<Vec<f64>> = (0..k)
        .map(|i| {
            (0..k)
                .map(|j| {
                    let at = |r: usize, c: usize| {
                        hessian
                            .get(r)
                            .and_then(|row| row.get(c))
                            .copied()
                            .unwrap_or(f64::NAN)
                    };
                    0.5 * (at(i, j) + at(j, i))
                })
                .collect()
        })
        .collect();
    let inverse = invert_positive_definite(&symmetric)
        .ok_or(ModelError::NotIdentified { model: L::MODEL })?;
    inverse
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let variance = row.get(i).copied().unwrap_or(f64::NAN);
            if variance.is_finite() && variance > 0.0 {
                Ok(variance.sqrt())
            } else {
                Err(ModelError::NotIdentified { model: L::MODEL })
            }
        })
        .collect()
}

/// Inverse of a small symmetric positive-definite matrix through its Cholesky factor; `None` when
/// the matrix is not positive definite (or not finite).
pub(crate) fn invert_positive_definite(matrix: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let k = matrix.len();
    let at = |m: &[Vec<f64>], r: usize, c: usize| m.get(r)?.get(c).copied();
    // Cholesky: matrix = L L^T.
    let mut lower = vec![vec![0.0; k]; k];
    for i in 0..k {
        for j in 0..=i {
            let mut sum = at(matrix, i, j)?;
            for p in 0..j {
                sum -= at(&lower, i, p)? * at(&lower, j, p)?;
            }
            let value = if i == j {
                if !(sum.is_finite() && sum > 0.0) {
                    return None;
                }
                sum.sqrt()
            } else {
                sum / at(&lower, j, j)?
            };
            *lower.get_mut(i)?.get_mut(j)? = value;
        }
    }
    // Solve L L^T X = I column by column.
    let mut inverse = vec![vec![0.0; k]; k];
    for col in 0..k {
        let mut y = vec![0.0; k];
        for i in 0..k {
            let mut sum = if i == col { 1.0 } else { 0.0 };
            for p in 0..i {
                sum -= at(&lower, i, p)? * *y.get(p)?;
            }
            *y.get_mut(i)? = sum / at(&lower, i, i)?;
        }
        let mut x = vec![0.0; k];
        for i in (0..k).rev() {
            let mut sum = *y.get(i)?;
            for p in (i + 1)..k {
                sum -= at(&lower, p, i)? * *x.get(p)?;
            }
            *x.get_mut(i)? = sum / at(&lower, i, i)?;
        }
        for (i, value) in x.into_iter().enumerate() {
            *inverse.get_mut(i)?.get_mut(col)? = value;
        }
    }
    Some(inverse)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        clippy::needless_range_loop
    )]
    use super::*;

    #[test]
    fn inverse_times_matrix_is_identity() {
        let m = vec![
            vec![4.0, 1.0, 0.5],
            vec![1.0, 3.0, 0.2],
            vec![0.5, 0.2, 2.0],
        ];
        let inv = invert_positive_definite(&m).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let product: f64 = (0..3).map(|p| m[i][p] * inv[p][j]).sum();
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!((product - expected).abs() < 1e-12, "({i},{j}) = {product}");
            }
        }
    }

    #[test]
    fn indefinite_matrix_is_refused() {
        let m = vec![vec![1.0, 2.0], vec![2.0, 1.0]];
        assert_eq!(invert_positive_definite(&m), None);
    }

    /// A Gaussian sample's log-likelihood in (mean, sd) has a known maximum and known standard
    /// errors; the fitting machinery must find both.
    struct Normal(Vec<f64>);
    impl LogLikelihood for Normal {
        const MODEL: &'static str = "normal";
        const ANALYTIC_GRADIENT: bool = false;
        fn n_observations(&self) -> usize {
            self.0.len()
        }
        fn value(&self, p: &[f64]) -> f64 {
            let (mu, sd) = (p[0], p[1]);
            self.0
                .iter()
                .map(|x| -0.5 * ((x - mu) / sd).powi(2) - sd.ln())
                .sum()
        }
    }

    #[test]
    fn finds_the_normal_maximum_and_its_standard_errors() {
        let data: Vec<f64> = (0..200)
            .map(|i| 5.0 + ((i * 37 % 101) as f64 - 50.0) / 20.0)
            .collect();
        let n = data.len() as f64;
        let mean = data.iter().sum::<f64>() / n;
        let sd = (data.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
        let fit = maximize(&Normal(data), &[1.0, 1.0]).unwrap();
        assert!(fit.converged);
        assert!((fit.params[0] - mean).abs() < 1e-6, "{:?}", fit.params);
        assert!((fit.params[1] - sd).abs() < 1e-6, "{:?}", fit.params);
        // Var(mean) = sd^2 / n, Var(sd) = sd^2 / (2n) at the MLE.
        assert!((fit.standard_errors[0] - sd / n.sqrt()).abs() < 1e-4 * sd);
        assert!((fit.standard_errors[1] - sd / (2.0 * n).sqrt()).abs() < 1e-4 * sd);
    }
}
