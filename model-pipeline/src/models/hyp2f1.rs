//! The Gaussian hypergeometric function 2F1(a, b; c; z) for real arguments and z < 1.
//!
//! Written here rather than taken from a crate because the crates measured on 1,584 reference cases
//! returned NaN, panicked, or silently returned an unconverged partial sum. This implementation
//! either returns a value whose truncation error is bounded, or an error saying why it could not.
//!
//! Method: the power series sum (a)_n (b)_n / ((c)_n n!) z^n, after two exact transformations that
//! make it converge fast for the arguments the models use:
//! - Pfaff, for z < 0: 2F1(a,b;c;z) = (1-z)^(-a) 2F1(a, c-b; c; z/(z-1)), whose argument is in [0, 1).
//! - Euler, when a + b - c > 0: 2F1(a,b;c;z) = (1-z)^(c-a-b) 2F1(c-a, c-b; c; z). The terms of the
//!   series behave like n^(a+b-c-1) z^n, so trading a+b-c for its negative turns a slowly decaying
//!   (or growing) tail into a fast-decaying one near z = 1.
//!
//! Not supported (an error, never a guess): z >= 1, c a non-positive integer, and cases whose
//! series would need more than [`MAX_TERMS`] terms or loses too many digits to cancellation.

use super::ModelError;

/// Upper bound on summed terms: at z = 0.9999 a well-conditioned series needs about 400,000.
const MAX_TERMS: usize = 2_000_000;

/// Relative truncation error accepted.
const TOLERANCE: f64 = 1e-15;

/// Relative rounding error accepted: the sum of |terms| may exceed |sum| by at most this factor
/// times 1/eps before the result is called unreliable (about 9 correct digits remain).
const MAX_CANCELLATION: f64 = 1e7;

/// 2F1(a, b; c; z) for real a, b, c and z < 1.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Result<f64, ModelError> {
    let domain = |reason| ModelError::Hyp2f1Domain { a, b, c, z, reason };
    if ![a, b, c, z].iter().all(|v| v.is_finite()) {
        return Err(domain("every argument must be finite"));
    }
    if c <= 0.0 && c.fract() == 0.0 {
        return Err(domain("c is a non-positive integer, where 2F1 has a pole"));
    }
    if z >= 1.0 {
        return Err(domain("only z < 1 is supported"));
    }
    let value = if z < 0.0 {
        // Pfaff: w = z / (z - 1) lies in (0, 1).
        let w = z / (z - 1.0);
        (1.0 - z).powf(-a)
            * unit_interval(a, c - b, c, w).map_err(|r| no_convergence(a, b, c, z, r))?
    } else {
        unit_interval(a, b, c, z).map_err(|r| no_convergence(a, b, c, z, r))?
    };
    if value.is_finite() {
        Ok(value)
    } else {
        Err(no_convergence(a, b, c, z, "the result overflows f64"))
    }
}

fn no_convergence(a: f64, b: f64, c: f64, z: f64, reason: &'static str) -> ModelError {
    ModelError::Hyp2f1NoConvergence { a, b, c, z, reason }
}

/// 2F1 for 0 <= z < 1, choosing between the series and its Euler transform.
///
/// The preferred form is the one whose terms decay faster near z = 1 (Euler when a + b - c > 0).
/// If its terms cancel heavily (the sum is much smaller than the sum of magnitudes, which loses
/// digits), the other form is tried as well and the one with the smaller rounding-error bound wins.
fn unit_interval(a: f64, b: f64, c: f64, z: f64) -> Result<f64, &'static str> {
    if z == 0.0 {
        return Ok(1.0);
    }
    let direct = || power_series(a, b, c, z).map(|s| (s, 1.0));
    let euler = || {
        let factor = (1.0 - z).powf(c - a - b);
        power_series(c - a, c - b, c, z).map(|s| (s, factor))
    };
    // A series that terminates (a or b a non-positive integer) is exact as it stands.
    let terminates = |p: f64| p <= 0.0 && p.fract() == 0.0;
    let prefer_euler = a + b - c > 0.0 && !terminates(a) && !terminates(b);
    let (first, second): (&dyn Fn() -> _, &dyn Fn() -> _) = if prefer_euler {
        (&euler, &direct)
    } else {
        (&direct, &euler)
    };
    let first = first();
    if let Ok((sum, _)) = &first
        && sum.cancellation() <= WELL_CONDITIONED
    {
        return first.map(|(sum, factor)| sum.value * factor);
    }
    let best = match (first, second()) {
        (Ok(p), Ok(q)) => Ok(if p.0.cancellation() <= q.0.cancellation() {
            p
        } else {
            q
        }),
        (Ok(p), Err(_)) => Ok(p),
        (Err(_), Ok(q)) => Ok(q),
        (Err(e), Err(_)) => Err(e),
    }?;
    if best.0.cancellation() > MAX_CANCELLATION {
        return Err("cancellation between terms leaves too few correct digits");
    }
    Ok(best.0.value * best.1)
}

/// Below this ratio of sum of magnitudes to magnitude of the sum, at most 3 digits are lost and
/// the other form is not worth trying.
const WELL_CONDITIONED: f64 = 1e3;

/// A converged series: its value and the sum of the magnitudes of its terms.
struct Sum {
    value: f64,
    magnitude: f64,
}

impl Sum {
    fn cancellation(&self) -> f64 {
        if self.value == 0.0 {
            f64::INFINITY
        } else {
            self.magnitude / self.value.abs()
        }
    }
}

/// Sums the power series with a proven bound on the remaining tail.
///
/// The ratio of consecutive terms is z g(n) with g(n) = (a+n)(b+n) / ((c+n)(n+1)). For
/// n > |c| + 1, g(m) <= 1 + (|k| m + |ab - c|) / ((c+m)(m+1)) with k = a+b-c-1, and that bound
/// decreases in m, so rho = |z| (1 + (|k| n + |ab - c|) / ((c+n)(n+1))) bounds every later ratio.
/// Once rho < 1 the tail is at most |t_n| rho / (1 - rho).
fn power_series(a: f64, b: f64, c: f64, z: f64) -> Result<Sum, &'static str> {
    let mut term = 1.0_f64;
    let mut sum = 1.0_f64;
    // Neumaier compensation: near z = 1 hundreds of thousands of terms are added, and plain
    // summation would lose about log10(terms) digits.
    let mut compensation = 0.0_f64;
    let mut sum_abs = 1.0_f64;
    let k = (a + b - c - 1.0).abs();
    let m = (a * b - c).abs();
    let settled_after = c.abs() + 2.0;
    for n in 0..MAX_TERMS {
        let nf = n as f64;
        term *= (a + nf) * (b + nf) / ((c + nf) * (nf + 1.0)) * z;
        let updated = sum + term;
        compensation += if sum.abs() >= term.abs() {
            (sum - updated) + term
        } else {
            (term - updated) + sum
        };
        sum = updated;
        sum_abs += term.abs();
        if term == 0.0 {
            // The series terminated (a or b a non-positive integer) or underflowed to zero, and
            // every later term is a multiple of this one.
            return Ok(Sum {
                value: sum + compensation,
                magnitude: sum_abs,
            });
        }
        if !term.is_finite() || !sum.is_finite() {
            return Err("a term of the series overflows f64");
        }
        let next = nf + 1.0;
        if next > settled_after {
            let rho = z.abs() * (1.0 + (k * next + m) / ((c + next) * (next + 1.0)));
            if rho < 1.0 && term.abs() * rho / (1.0 - rho) <= TOLERANCE * sum.abs() {
                return Ok(Sum {
                    value: sum + compensation,
                    magnitude: sum_abs,
                });
            }
        }
    }
    Err("the power series needs more terms than the limit")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    fn close(actual: f64, expected: f64, relative: f64) -> bool {
        (actual - expected).abs() <= relative * expected.abs().max(f64::MIN_POSITIVE)
    }

    #[test]
    fn closed_forms() {
        let zs: [f64; 12] = [
            -50.0, -3.0, -0.9, -0.3, 0.0, 1e-6, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999,
        ];
        for &z in &zs {
            // 2F1(1,1;2;z) = -ln(1-z)/z.
            let expected = if z == 0.0 { 1.0 } else { -(-z).ln_1p() / z };
            let got = hyp2f1(1.0, 1.0, 2.0, z).unwrap();
            assert!(
                close(got, expected, 1e-13),
                "2F1(1,1;2;{z}) = {got}, want {expected}"
            );
            // 2F1(a,b;b;z) = (1-z)^(-a).
            for &a in &[0.243, 2.5, -1.7, 7.0] {
                let expected = (1.0 - z).powf(-a);
                let got = hyp2f1(a, 3.3, 3.3, z).unwrap();
                assert!(
                    close(got, expected, 1e-12),
                    "2F1({a},3.3;3.3;{z}) = {got}, want {expected}"
                );
            }
            // 2F1(1/2,1/2;3/2;z^2) = asin(z)/z on |z| < 1.
            if (0.0..1.0).contains(&z) && z > 0.0 {
                let s = z.sqrt();
                let expected = s.asin() / s;
                let got = hyp2f1(0.5, 0.5, 1.5, z).unwrap();
                assert!(
                    close(got, expected, 1e-12),
                    "2F1(.5,.5;1.5;{z}) = {got}, want {expected}"
                );
            }
        }
        // A terminating series is a polynomial: 2F1(-2, b; c; z) = 1 - 2bz/c + b(b+1)z^2/(c(c+1)).
        let (b, c, z) = (1.5, 2.5, 0.7);
        let expected = 1.0 - 2.0 * b * z / c + b * (b + 1.0) * z * z / (c * (c + 1.0));
        assert!(close(hyp2f1(-2.0, b, c, z).unwrap(), expected, 1e-14));
    }

    #[test]
    fn refuses_what_it_cannot_compute() {
        let cases = [
            (1.0, 1.0, 2.0, 1.0, "only z < 1 is supported"),
            (
                1.0,
                1.0,
                -3.0,
                0.5,
                "c is a non-positive integer, where 2F1 has a pole",
            ),
            (1.0, f64::NAN, 2.0, 0.5, "every argument must be finite"),
        ];
        for (a, b, c, z, reason) in cases {
            match hyp2f1(a, b, c, z) {
                Err(ModelError::Hyp2f1Domain { reason: r, .. }) => assert_eq!(r, reason),
                other => panic!("2F1({a},{b};{c};{z}) gave {other:?}"),
            }
        }
        // So close to 1 that even the transformed series cannot finish within the term limit.
        match hyp2f1(0.5, 0.25, 1.5, 1.0 - 1e-9) {
            Err(ModelError::Hyp2f1NoConvergence { .. }) => {}
            other => panic!("expected a convergence error, got {other:?}"),
        }
    }

    /// Values computed independently with mpmath at 50 digits by `testdata/hyp2f1_mpmath.py`.
    #[test]
    fn matches_mpmath_reference_table() {
        let table = include_str!("testdata/hyp2f1_mpmath.csv");
        let mut checked = 0;
        for (line_no, line) in table.lines().enumerate().skip(1) {
            let fields: Vec<f64> = line.split(',').map(|f| f.parse().unwrap()).collect();
            let [a, b, c, z, expected] = fields[..] else {
                panic!("line {}: expected 5 fields", line_no + 1)
            };
            let got = hyp2f1(a, b, c, z).unwrap_or_else(|e| panic!("line {}: {e}", line_no + 1));
            assert!(
                close(got, expected, 1e-10),
                "line {}: 2F1({a},{b};{c};{z}) = {got}, mpmath says {expected}",
                line_no + 1
            );
            checked += 1;
        }
        assert!(checked >= 100, "only {checked} reference rows");
    }
}
