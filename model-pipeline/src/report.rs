//! The merchant's report: one self-contained HTML page with inline SVG charts (plotters' SVG
//! backend, so no browser-side script and nothing to install to view it).

use std::fmt::Write as _;

use marginwise_engine::money::format_decimal_minor;
use plotters::prelude::*;

use crate::ingest::StoreData;
use crate::ingest::records::format_timestamp;
use crate::plan::PlanCounts;
use crate::score::{FitCheck, Scored};
use crate::segments::{AT_RISK_QUANTILE, LAPSED_QUANTILE, LOYAL_QUANTILE, quantile};

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Predicted vs actual mean holdout transactions by calibration frequency.
fn fit_chart(check: &FitCheck) -> Result<String, Box<dyn std::error::Error>> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 380)).into_drawing_area();
        root.fill(&WHITE)?;
        let rows: Vec<_> = check.rows.iter().filter(|r| r.customers > 0).collect();
        let y_max = rows
            .iter()
            .map(|r| r.actual_mean.max(r.predicted_mean))
            .fold(0.1, f64::max)
            * 1.15;
        let x_max = rows.iter().map(|r| r.frequency).max().unwrap_or(1) as f64;
        let last = check.rows.len().saturating_sub(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "Repeat transactions in the {:.0}-week holdout",
                    check.holdout_weeks
                ),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(-0.2f64..x_max + 0.2, 0f64..y_max)?;
        chart
            .configure_mesh()
            .x_desc("repeat transactions in the calibration period")
            .y_desc("mean per customer")
            .x_labels(rows.len().max(2))
            .x_label_formatter(&|x| {
                let v = x.round() as usize;
                if v == last {
                    format!("{v}+")
                } else {
                    format!("{v}")
                }
            })
            .draw()?;
        let actual: Vec<(f64, f64)> = rows
            .iter()
            .map(|r| (r.frequency as f64, r.actual_mean))
            .collect();
        let predicted: Vec<(f64, f64)> = rows
            .iter()
            .map(|r| (r.frequency as f64, r.predicted_mean))
            .collect();
        chart
            .draw_series(LineSeries::new(actual.clone(), BLACK.stroke_width(2)))?
            .label("actual")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
        chart.draw_series(actual.iter().map(|p| Circle::new(*p, 3, BLACK.filled())))?;
        chart
            .draw_series(LineSeries::new(predicted.clone(), BLUE.stroke_width(2)))?
            .label("BG/NBD prediction")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        chart.draw_series(predicted.iter().map(|p| Circle::new(*p, 3, BLUE.filled())))?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

/// Bars with text labels under each.
fn bar_chart(
    title: &str,
    x_desc: &str,
    bars: &[(String, f64)],
) -> Result<String, Box<dyn std::error::Error>> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 360)).into_drawing_area();
        root.fill(&WHITE)?;
        let y_max = bars.iter().map(|b| b.1).fold(1.0, f64::max) * 1.1;
        let n = bars.len().max(1);
        let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..n as f64, 0f64..y_max)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_label_formatter(&|y| format!("{y:.0}"))
            .x_desc(x_desc)
            .x_labels(n.min(12) * 2 + 1)
            .x_label_formatter(&|x| {
                let centre = x - x.floor();
                if (centre - 0.5).abs() < 0.01 {
                    labels.get(x.floor() as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .draw()?;
        chart.draw_series(bars.iter().enumerate().map(|(i, (_, value))| {
            let x = i as f64;
            Rectangle::new(
                [(x + 0.12, 0.0), (x + 0.88, *value)],
                BLUE.mix(0.6).filled(),
            )
        }))?;
        root.present()?;
    }
    Ok(svg)
}

/// A histogram over a numeric axis: `counts[i]` customers between `i * width` and
/// `(i + 1) * width` (major currency units).
fn histogram_chart(
    title: &str,
    x_desc: &str,
    width: f64,
    counts: &[u64],
) -> Result<String, Box<dyn std::error::Error>> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (640, 360)).into_drawing_area();
        root.fill(&WHITE)?;
        let y_max = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
        let x_max = width * counts.len() as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_label_formatter(&|y| format!("{y:.0}"))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .x_desc(x_desc)
            .y_desc("customers")
            .draw()?;
        chart.draw_series(counts.iter().enumerate().map(|(i, n)| {
            let lo = i as f64 * width;
            Rectangle::new(
                [(lo + width * 0.06, 0.0), (lo + width * 0.94, *n as f64)],
                BLUE.mix(0.6).filled(),
            )
        }))?;
        root.present()?;
    }
    Ok(svg)
}

fn chart_or_note(result: Result<String, Box<dyn std::error::Error>>) -> String {
    match result {
        Ok(svg) => svg,
        Err(error) => format!("<p>(chart unavailable: {})</p>", escape(&error.to_string())),
    }
}

/// Renders the report page.
pub fn render(data: &StoreData, scored: &Scored, plan: &PlanCounts) -> String {
    let currency = data.currency;
    let money = |minor: f64| {
        format!(
            "{} {}",
            format_decimal_minor(minor.round() as i64, currency.exponent),
            currency.code_str()
        )
    };
    let mut html = String::new();
    html.push_str(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>marginwise report</title>\
         <style>body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}\
         table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;\
         text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}\
         .note{color:#555;font-size:90%}</style></head><body>",
    );
    let _ = write!(
        html,
        "<h1>marginwise report</h1><p>{} customers, {} products, {} orders; history up to {}; \
         shop currency {}.</p>",
        data.customers.len(),
        data.catalog.products.len(),
        data.stats.orders,
        format_timestamp(data.last_order_time),
        currency.code_str()
    );

    // Model fit.
    let b = &scored.bgnbd;
    let g = &scored.gamma_gamma;
    let se = |v: &Vec<f64>, i: usize| v.get(i).map_or("-".to_string(), |s| format!("{s:.4}"));
    let _ = write!(
        html,
        "<h2>Model fit</h2><table><tr><th>model</th><th>parameters (standard error)</th>\
         <th>log-likelihood</th><th>converged</th></tr>\
         <tr><td>BG/NBD</td><td>r {:.4} ({}), alpha {:.4} ({}), a {:.4} ({}), b {:.4} ({})</td>\
         <td>{:.1}</td><td>{}</td></tr>\
         <tr><td>Gamma-Gamma</td><td>p {:.4} ({}), q {:.4} ({}), gamma {:.2} ({})</td>\
         <td>{:.1}</td><td>{}</td></tr></table>",
        b.model.r,
        se(&b.standard_errors, 0),
        b.model.alpha,
        se(&b.standard_errors, 1),
        b.model.a,
        se(&b.standard_errors, 2),
        b.model.b,
        se(&b.standard_errors, 3),
        b.log_likelihood,
        b.converged,
        g.model.p,
        se(&g.standard_errors, 0),
        g.model.q,
        se(&g.standard_errors, 1),
        g.model.gamma,
        se(&g.standard_errors, 2),
        g.log_likelihood,
        g.converged
    );
    match &scored.fit_check {
        Some(check) => {
            let _ = write!(
                html,
                "<p>Fit check: BG/NBD refitted on the history before {} ({} customers) predicts \
                 each customer's repeat transactions in the following {:.0} weeks; the means by \
                 calibration frequency should follow the actual ones.</p>",
                format_timestamp(i64::from(check.calibration_weeks_end_day) * 86_400),
                check.customers,
                check.holdout_weeks
            );
            html.push_str(&chart_or_note(fit_chart(check)));
            html.push_str(
                "<table><tr><th>calibration repeats</th><th>customers</th><th>actual mean</th>\
                 <th>predicted mean</th></tr>",
            );
            let last = check.rows.len().saturating_sub(1);
            for row in &check.rows {
                let label = if row.frequency == last {
                    format!("{}+", row.frequency)
                } else {
                    row.frequency.to_string()
                };
                let _ = write!(
                    html,
                    "<tr><td>{label}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td></tr>",
                    row.customers, row.actual_mean, row.predicted_mean
                );
            }
            html.push_str("</table>");
        }
        None => html.push_str(
            "<p class=\"note\">No fit check: the history is shorter than the 26-week holdout, \
             or the calibration fit failed.</p>",
        ),
    }

    // CLV distribution.
    let mut clv: Vec<f64> = scored.customers.iter().map(|c| c.scores.clv_12m).collect();
    let p99 = quantile(&mut clv, 0.99).unwrap_or(0.0).max(1.0);
    let median = quantile(&mut clv, 0.5).unwrap_or(0.0);
    const BINS: usize = 30;
    let width = p99 / BINS as f64;
    let mut counts = [0u64; BINS];
    for value in &clv {
        let bin = ((value / width) as usize).min(BINS - 1);
        if let Some(count) = counts.get_mut(bin) {
            *count += 1;
        }
    }
    let _ = write!(
        html,
        "<h2>Predicted 12-month value (CLV)</h2><p>Discounted expected revenue over the next 12 \
         months per customer; median {}, 99th percentile {} (the last bar pools everything above \
         it).</p>",
        money(median),
        money(p99)
    );
    let major = 10f64.powi(i32::from(currency.exponent));
    html.push_str(&chart_or_note(histogram_chart(
        "Customers by predicted 12-month value",
        &format!("CLV ({})", currency.code_str()),
        width / major,
        &counts,
    )));

    // Segments.
    let t = &scored.thresholds;
    let counts = scored.segment_counts();
    let bars: Vec<(String, f64)> = counts
        .iter()
        .map(|(s, n)| (s.code().to_string(), *n as f64))
        .collect();
    html.push_str("<h2>Segments</h2>");
    html.push_str(&chart_or_note(bar_chart(
        "Customers per segment",
        "segment",
        &bars,
    )));
    let _ = write!(
        html,
        "<table><tr><th>segment</th><th>customers</th><th>rule (thresholds read off this store)</th></tr>\
         <tr><td>new</td><td>{}</td><td>one transaction, first order less than {:.1} weeks ago (median gap between a repeat buyer's purchases)</td></tr>\
         <tr><td>lapsed</td><td>{}</td><td>expected orders in 12 months below {:.3} ({:.0}th percentile of non-new customers)</td></tr>\
         <tr><td>at_risk</td><td>{}</td><td>one-time buyer past the new window, or P(alive) below {:.3} (median of repeat buyers)</td></tr>\
         <tr><td>loyal_high_value</td><td>{}</td><td>likely-alive repeat buyer with CLV at least {} ({:.0}th percentile)</td></tr>\
         <tr><td>active</td><td>{}</td><td>every other repeat buyer</td></tr></table>\
         <p class=\"note\">Quantile levels: lapsed {:.0} %, at risk {:.0} %, loyal {:.0} %. {} customers opted out \
         (no profile; {} deletions planned), {} have no orders (no profile).</p>",
        count_of(&counts, "new"),
        t.new_max_age_weeks,
        count_of(&counts, "lapsed"),
        t.lapsed_max_expected_orders,
        LAPSED_QUANTILE * 100.0,
        count_of(&counts, "at_risk"),
        t.at_risk_max_p_alive,
        count_of(&counts, "loyal_high_value"),
        money(t.loyal_min_clv),
        LOYAL_QUANTILE * 100.0,
        count_of(&counts, "active"),
        LAPSED_QUANTILE * 100.0,
        AT_RISK_QUANTILE * 100.0,
        LOYAL_QUANTILE * 100.0,
        scored.opted_out.len(),
        plan.deletions,
        scored.customers_without_orders
    );

    // Complements.
    let c = &scored.complements;
    let _ = write!(
        html,
        "<h2>Complementary products</h2><p>Pairs bought in the same order at least {} times. \
         Rankings compared with each repeat customer's last order left out (every product of that \
         order is an anchor; the others should be in the top 5). Chosen: <b>{}</b>.</p>\
         <table><tr><th>ranking</th><th>anchors</th><th>hit rate@5</th><th>NDCG@5</th></tr>",
        c.min_support,
        c.ranking.name()
    );
    for row in &c.evaluation {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td></tr>",
            row.ranking.name(),
            row.anchors,
            row.hit_rate_at_5,
            row.ndcg_at_5
        );
    }
    html.push_str("</table>");
    let mut pairs: Vec<(u64, u64, u32, f64)> = Vec::new();
    for (anchor, list) in c.per_product.iter().enumerate() {
        for complement in list {
            if (anchor as u32) < complement.product {
                let id = |i: usize| data.catalog.products.get(i).copied().unwrap_or(0);
                pairs.push((
                    id(anchor),
                    id(complement.product as usize),
                    complement.co_orders,
                    complement.lift,
                ));
            }
        }
    }
    pairs.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    html.push_str(
        "<table><tr><th>product</th><th>complement</th><th>orders with both</th><th>lift</th></tr>",
    );
    for (a, b, co, lift) in pairs.iter().take(20) {
        let _ = write!(
            html,
            "<tr><td>{a}</td><td>{b}</td><td>{co}</td><td>{lift:.2}</td></tr>"
        );
    }
    html.push_str("</table>");

    // Input quality.
    let s = &data.stats;
    let _ = write!(
        html,
        "<h2>Input</h2><table><tr><th>what</th><th>count</th></tr>\
         <tr><td>orders read</td><td>{}</td></tr><tr><td>line items</td><td>{}</td></tr>\
         <tr><td>cancelled or test orders (left out)</td><td>{}</td></tr>\
         <tr><td>guest orders (complements only)</td><td>{}</td></tr>\
         <tr><td>orders of opted-out customers (left out)</td><td>{}</td></tr>\
         <tr><td>orders of customers not in the export</td><td>{}</td></tr>\
         <tr><td>line items of unknown products</td><td>{}</td></tr>\
         <tr><td>variants without unit cost</td><td>{}</td></tr>\
         <tr><td>malformed lines skipped</td><td>{}</td></tr></table>",
        s.orders,
        s.line_items,
        s.cancelled_or_test_orders,
        s.guest_orders,
        s.orders_of_opted_out_customers,
        s.orders_of_unknown_customers,
        s.line_items_of_unknown_products,
        data.catalog
            .variants
            .iter()
            .filter(|v| v.unit_cost_minor.is_none())
            .count(),
        s.bad_lines
    );
    for example in &s.bad_line_examples {
        let _ = write!(html, "<p class=\"note\">{}</p>", escape(example));
    }
    let _ = write!(
        html,
        "<p class=\"note\">Plan: {} profiles and {} variant records (metafields.jsonl), {} \
         deletions (deletions.jsonl).</p></body></html>",
        plan.profiles, plan.variants, plan.deletions
    );
    html
}

fn count_of(counts: &[(marginwise_engine::Segment, u64)], code: &str) -> u64 {
    counts
        .iter()
        .find(|(s, _)| s.code() == code)
        .map_or(0, |(_, n)| *n)
}
