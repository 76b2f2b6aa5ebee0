//! The models against their published CDNOW estimates.
//!
//! Data: the 1/10 CDNOW sample (2,357 customers who first bought in Q1 1997) as shipped in the PyPI
//! package lifetimes 0.11.3. The test downloads the wheel with pip into cargo's per-test temporary
//! directory (kept between runs as a cache) and reads the raw transaction log out of it as a zip.
//! The data is not committed to the repository. If pip cannot fetch the wheel the test fails with a
//! message saying so: a skipped accuracy test would look like a passing one.
//!
//! Summaries are built here from raw transactions the way the papers do: weeks 1-39 (1997-01-01 to
//! 1997-09-30) are the calibration period, all purchases of a customer on one day are one
//! transaction, time is in weeks, and the mean value excludes the first transaction.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use model_pipeline::models::{BgNbd, CustomerSummary, GammaGamma, ParetoNbd};

const WHEEL: &str = "Lifetimes-0.11.3-py3-none-any.whl";

/// Downloads (once) the lifetimes wheel and returns its path.
fn lifetimes_wheel() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lifetimes-0.11.3");
    let wheel = dir.join(WHEEL);
    if wheel.exists() {
        return wheel;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let output = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "lifetimes==0.11.3",
            "--no-deps",
            "--disable-pip-version-check",
            "-d",
        ])
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "could not run `python3 -m pip` to download the CDNOW data (lifetimes 0.11.3): {e}"
            )
        });
    assert!(
        output.status.success() && wheel.exists(),
        "`python3 -m pip download lifetimes==0.11.3 --no-deps -d {}` failed, so the CDNOW data is \
         unavailable and the model accuracy test cannot run.\nstdout:\n{}\nstderr:\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    wheel
}

fn read_from_wheel(wheel: &Path, name: &str) -> String {
    let file = std::fs::File::open(wheel).unwrap();
    let mut archive = zip::ZipArchive::new(file).unwrap();
    let mut entry = archive
        .by_name(name)
        .unwrap_or_else(|e| panic!("{} has no {name}: {e}", wheel.display()));
    let mut text = String::new();
    entry.read_to_string(&mut text).unwrap();
    text
}

/// Days since 1970-01-01 of a yyyymmdd date.
fn day_number(yyyymmdd: &str) -> i64 {
    let date = jiff::civil::Date::strptime("%Y%m%d", yyyymmdd)
        .unwrap_or_else(|e| panic!("{yyyymmdd:?}: {e}"));
    let days = date
        .since(jiff::civil::date(1970, 1, 1))
        .unwrap()
        .get_days();
    i64::from(days)
}

/// Calibration summaries keyed by the sample's customer id.
fn cdnow_calibration(raw: &str) -> BTreeMap<u32, CustomerSummary> {
    let calibration_end = day_number("19970930");
    // Per customer: day -> total spend that day.
    let mut days: BTreeMap<u32, BTreeMap<i64, f64>> = BTreeMap::new();
    for (line_no, line) in raw.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        assert_eq!(
            fields.len(),
            5,
            "CDNOW_sample.txt line {}: {line:?}",
            line_no + 1
        );
        let customer: u32 = fields[1].parse().unwrap();
        let day = day_number(fields[2]);
        let dollars: f64 = fields[4].parse().unwrap();
        *days.entry(customer).or_default().entry(day).or_default() += dollars;
    }
    days.into_iter()
        .map(|(customer, spend_by_day)| {
            let first = *spend_by_day.keys().next().unwrap();
            let repeats: Vec<(i64, f64)> = spend_by_day
                .iter()
                .skip(1)
                .filter(|(day, _)| **day <= calibration_end)
                .map(|(d, s)| (*d, *s))
                .collect();
            let last = repeats.last().map_or(first, |(d, _)| *d);
            let monetary = if repeats.is_empty() {
                0.0
            } else {
                repeats.iter().map(|(_, s)| s).sum::<f64>() / repeats.len() as f64
            };
            let summary = CustomerSummary {
                frequency: repeats.len() as f64,
                recency: (last - first) as f64 / 7.0,
                age: (calibration_end - first) as f64 / 7.0,
                monetary,
            };
            (customer, summary)
        })
        .collect()
}

fn within(name: &str, got: f64, published: f64, relative: f64) -> Option<String> {
    let error = (got - published).abs() / published.abs();
    (error > relative).then(|| {
        format!(
            "{name}: fitted {got:.5}, published {published}, off by {:.3} %",
            100.0 * error
        )
    })
}

fn cdnow() -> Vec<CustomerSummary> {
    let wheel = lifetimes_wheel();
    let raw = read_from_wheel(&wheel, "lifetimes/datasets/CDNOW_sample.txt");
    let summaries = cdnow_calibration(&raw);

    // Cross-check the summaries against the per-customer table shipped in the same package
    // (rounded to two decimals there), so a mistake in building them cannot hide behind the fit.
    let table = read_from_wheel(
        &wheel,
        "lifetimes/datasets/cdnow_customers_summary_with_transactions.csv",
    );
    let mut compared = 0;
    for line in table.lines().skip(1) {
        let f: Vec<f64> = line.split(',').map(|v| v.trim().parse().unwrap()).collect();
        let ours = summaries[&(f[0] as u32)];
        assert_eq!(ours.frequency, f[1], "customer {}: frequency", f[0]);
        assert!(
            (ours.recency - f[2]).abs() < 0.006,
            "customer {}: recency {} vs {}",
            f[0],
            ours.recency,
            f[2]
        );
        assert!(
            (ours.age - f[3]).abs() < 0.006,
            "customer {}: age {} vs {}",
            f[0],
            ours.age,
            f[3]
        );
        assert!(
            (ours.monetary - f[4]).abs() < 0.006,
            "customer {}: mean value {} vs {}",
            f[0],
            ours.monetary,
            f[4]
        );
        compared += 1;
    }
    assert_eq!(compared, 2357);
    summaries.into_values().collect()
}

#[test]
fn bgnbd_and_gamma_gamma_reproduce_the_published_cdnow_estimates() {
    let data = cdnow();
    assert_eq!(data.len(), 2357);
    let repeat_buyers = data.iter().filter(|c| c.frequency > 0.0).count();
    assert_eq!(repeat_buyers, 946);

    let bgnbd = BgNbd::fit(&data).unwrap();
    let m = bgnbd.model;
    eprintln!(
        "BG/NBD: r {:.4} alpha {:.4} a {:.4} b {:.4} LL {:.2} (se {:?}, {} iterations, converged {})",
        m.r,
        m.alpha,
        m.a,
        m.b,
        bgnbd.log_likelihood,
        bgnbd.standard_errors,
        bgnbd.iterations,
        bgnbd.converged
    );
    let mut problems: Vec<String> = [
        within("r", m.r, 0.243, 0.005),
        within("alpha", m.alpha, 4.414, 0.005),
        within("a", m.a, 0.793, 0.005),
        within("b", m.b, 2.426, 0.005),
    ]
    .into_iter()
    .flatten()
    .collect();
    if (bgnbd.log_likelihood - -9582.4).abs() > 0.1 {
        problems.push(format!(
            "BG/NBD log-likelihood {:.3}, published -9582.4",
            bgnbd.log_likelihood
        ));
    }
    assert!(bgnbd.converged, "BG/NBD optimizer did not converge");
    assert_eq!(bgnbd.standard_errors.len(), 4);

    let gg = GammaGamma::fit(&data).unwrap();
    let g = gg.model;
    eprintln!(
        "Gamma-Gamma: p {:.4} q {:.4} gamma {:.4} LL {:.2} (se {:?}, {} iterations, converged {})",
        g.p, g.q, g.gamma, gg.log_likelihood, gg.standard_errors, gg.iterations, gg.converged
    );
    problems.extend(
        [
            within("p", g.p, 6.25, 0.005),
            within("q", g.q, 3.74, 0.005),
            within("gamma", g.gamma, 15.44, 0.005),
        ]
        .into_iter()
        .flatten(),
    );
    assert!(gg.converged, "Gamma-Gamma optimizer did not converge");
    assert!(
        problems.is_empty(),
        "CDNOW estimates off:\n{}",
        problems.join("\n")
    );
}

#[test]
fn pareto_nbd_reproduces_the_published_cdnow_estimates() {
    let data = cdnow();
    let fit = ParetoNbd::fit(&data).unwrap();
    let m = fit.model;
    eprintln!(
        "Pareto/NBD: r {:.4} alpha {:.4} s {:.4} beta {:.4} LL {:.2} ({} iterations, converged {})",
        m.r, m.alpha, m.s, m.beta, fit.log_likelihood, fit.iterations, fit.converged
    );
    // Same bar as BG/NBD: parameters within 0.5 %, log-likelihood within 0.1.
    let mut problems: Vec<String> = [
        within("r", m.r, 0.553, 0.005),
        within("alpha", m.alpha, 10.578, 0.005),
        within("s", m.s, 0.606, 0.005),
        within("beta", m.beta, 11.669, 0.005),
    ]
    .into_iter()
    .flatten()
    .collect();
    if (fit.log_likelihood - -9595.0).abs() > 0.1 {
        problems.push(format!(
            "Pareto/NBD log-likelihood {:.3}, published -9595.0",
            fit.log_likelihood
        ));
    }
    assert!(
        problems.is_empty(),
        "CDNOW Pareto/NBD estimates off:\n{}",
        problems.join("\n")
    );
}
