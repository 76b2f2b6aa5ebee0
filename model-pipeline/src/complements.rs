//! Complementary products from co-purchase in the same order, and the offline evaluation that
//! chooses how to rank them.
//!
//! A candidate pair needs a minimum support (orders containing both). Among the supported
//! candidates of an anchor product, three rankings are compared:
//! - `co_count`: orders with both (the same order as confidence P(b | a) for a fixed anchor); it
//!   leans towards best sellers;
//! - `lift`: co_count x N / (n_a n_b), how much more often than chance; it leans towards rare
//!   products whose few co-purchases are noise;
//! - `cosine`: co_count / sqrt(n_a n_b), between the two.
//!
//! Evaluation (leave the last order out): for every customer with at least two orders, their
//! latest order is removed from the counts; every product of that order (with at least two
//! distinct known products) is an anchor in turn, the other products are what should be
//! recommended. Hit rate at 5 (one of them among the top five) and NDCG at 5 (binary relevance)
//! are averaged over anchors, against a popularity baseline (the five products in most training
//! orders, the anchor excluded). The plan uses the ranking with the best NDCG at 5; the numbers are
//! printed and written to the report so the choice can be checked.

use rustc_hash::FxHashMap;

use crate::ingest::{CoPurchase, History};

/// The rankings compared; `Popularity` is the baseline, never written to the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ranking {
    Popularity,
    CoCount,
    Lift,
    Cosine,
}

impl Ranking {
    pub const CANDIDATES: [Ranking; 3] = [Ranking::CoCount, Ranking::Lift, Ranking::Cosine];

    pub fn name(self) -> &'static str {
        match self {
            Ranking::Popularity => "popularity",
            Ranking::CoCount => "co_count",
            Ranking::Lift => "lift",
            Ranking::Cosine => "cosine",
        }
    }
}

/// Cut-off of the offline metrics.
pub const EVAL_K: usize = 5;

/// One row of the offline evaluation table.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct EvalRow {
    pub ranking: Ranking,
    pub anchors: u64,
    pub hit_rate_at_5: f64,
    pub ndcg_at_5: f64,
}

/// A complementary product of an anchor, with the figures behind its rank.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Complement {
    pub product: u32,
    pub co_orders: u32,
    pub score: f64,
    pub lift: f64,
}

/// The outcome: per product (index) its ranked complements, and how the ranking was chosen.
#[derive(Debug, Clone)]
pub struct Complements {
    pub ranking: Ranking,
    pub min_support: u32,
    pub per_product: Vec<Vec<Complement>>,
    pub evaluation: Vec<EvalRow>,
}

fn score(ranking: Ranking, co: u32, n_a: u32, n_b: u32, n_orders: u64) -> f64 {
    let (co, n_a, n_b) = (f64::from(co), f64::from(n_a.max(1)), f64::from(n_b.max(1)));
    match ranking {
        Ranking::Popularity => n_b,
        Ranking::CoCount => co,
        Ranking::Lift => co * n_orders as f64 / (n_a * n_b),
        Ranking::Cosine => co / (n_a * n_b).sqrt(),
    }
}

/// Neighbours per product with their co-purchase counts, from the pair map.
fn adjacency(counts: &CoPurchase, min_support: u32) -> Vec<Vec<(u32, u32)>> {
    let mut neighbours: Vec<Vec<(u32, u32)>> = vec![Vec::new(); counts.product_orders.len()];
    for (&key, &co) in &counts.pair_orders {
        if co < min_support {
            continue;
        }
        let (a, b) = ((key >> 32) as u32, (key & 0xFFFF_FFFF) as u32);
        if let Some(list) = neighbours.get_mut(a as usize) {
            list.push((b, co));
        }
        if let Some(list) = neighbours.get_mut(b as usize) {
            list.push((a, co));
        }
    }
    neighbours
}

/// Ranked complements of every product under `ranking`, at most `k` each. Ties break on the
/// product index so the output does not depend on hash-map order.
fn rank_all(
    counts: &CoPurchase,
    min_support: u32,
    ranking: Ranking,
    k: usize,
) -> Vec<Vec<Complement>> {
    let neighbours = adjacency(counts, min_support);
    neighbours
        .into_iter()
        .enumerate()
        .map(|(a, list)| {
            let n_a = counts.product_orders.get(a).copied().unwrap_or(0);
            let mut ranked: Vec<Complement> = list
                .into_iter()
                .map(|(b, co)| {
                    let n_b = counts.product_orders.get(b as usize).copied().unwrap_or(0);
                    Complement {
                        product: b,
                        co_orders: co,
                        score: score(ranking, co, n_a, n_b, counts.n_orders),
                        lift: score(Ranking::Lift, co, n_a, n_b, counts.n_orders),
                    }
                })
                .collect();
            ranked.sort_by(|x, y| {
                y.score
                    .total_cmp(&x.score)
                    .then(y.co_orders.cmp(&x.co_orders))
                    .then(x.product.cmp(&y.product))
            });
            ranked.truncate(k);
            ranked
        })
        .collect()
}

/// The products in most orders, best first (ties by index).
fn popularity(counts: &CoPurchase, k: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..counts.product_orders.len() as u32).collect();
    order.sort_by(|a, b| {
        let count = |p: &u32| counts.product_orders.get(*p as usize).copied().unwrap_or(0);
        count(b).cmp(&count(a)).then(a.cmp(b))
    });
    order.truncate(k);
    order
}

#[derive(Default)]
struct Metric {
    anchors: u64,
    hits: f64,
    ndcg: f64,
}

impl Metric {
    fn add(&mut self, recommended: &[u32], relevant: &[u32]) {
        self.anchors += 1;
        let mut dcg = 0.0;
        let mut hit = false;
        for (rank, product) in recommended.iter().take(EVAL_K).enumerate() {
            if relevant.contains(product) {
                hit = true;
                dcg += 1.0 / (rank as f64 + 2.0).log2();
            }
        }
        let ideal: f64 = (0..relevant.len().min(EVAL_K))
            .map(|rank| 1.0 / (rank as f64 + 2.0).log2())
            .sum();
        if hit {
            self.hits += 1.0;
        }
        if ideal > 0.0 {
            self.ndcg += dcg / ideal;
        }
    }

    fn row(&self, ranking: Ranking) -> EvalRow {
        let n = self.anchors.max(1) as f64;
        EvalRow {
            ranking,
            anchors: self.anchors,
            hit_rate_at_5: self.hits / n,
            ndcg_at_5: self.ndcg / n,
        }
    }
}

/// Evaluates every ranking with each repeat customer's last order left out, picks the best by
/// NDCG at 5, and ranks the complements for the plan from all orders with it.
pub fn compute(
    counts: &CoPurchase,
    histories: &[History],
    min_support: u32,
    top_k: usize,
) -> Complements {
    let mut training = counts.clone();
    let mut held_out: Vec<&[u32]> = Vec::new();
    for history in histories {
        if history.n_orders >= 2 {
            training.apply(&history.last_order_products, -1);
            if history.last_order_products.len() >= 2 {
                held_out.push(&history.last_order_products);
            }
        }
    }
    let popular = popularity(&training, EVAL_K + 1);
    let ranked: Vec<(Ranking, Vec<Vec<Complement>>)> = Ranking::CANDIDATES
        .iter()
        .map(|&r| (r, rank_all(&training, min_support, r, EVAL_K)))
        .collect();
    let mut metrics: FxHashMap<usize, Metric> = FxHashMap::default();
    let mut relevant: Vec<u32> = Vec::new();
    for order in &held_out {
        for &anchor in order.iter() {
            relevant.clear();
            relevant.extend(order.iter().copied().filter(|p| *p != anchor));
            let baseline: Vec<u32> = popular
                .iter()
                .copied()
                .filter(|p| *p != anchor)
                .take(EVAL_K)
                .collect();
            metrics.entry(0).or_default().add(&baseline, &relevant);
            for (i, (_, lists)) in ranked.iter().enumerate() {
                let recommended: Vec<u32> = lists
                    .get(anchor as usize)
                    .map(|l| l.iter().map(|c| c.product).collect())
                    .unwrap_or_default();
                metrics
                    .entry(i + 1)
                    .or_default()
                    .add(&recommended, &relevant);
            }
        }
    }
    let mut evaluation = vec![
        metrics
            .remove(&0)
            .unwrap_or_default()
            .row(Ranking::Popularity),
    ];
    for (i, (ranking, _)) in ranked.iter().enumerate() {
        evaluation.push(metrics.remove(&(i + 1)).unwrap_or_default().row(*ranking));
    }
    let best = evaluation
        .iter()
        .skip(1)
        .fold(None::<EvalRow>, |best, row| match best {
            Some(b) if b.ndcg_at_5 >= row.ndcg_at_5 => Some(b),
            _ => Some(*row),
        })
        .map_or(Ranking::Cosine, |row| row.ranking);
    Complements {
        ranking: best,
        min_support,
        per_product: rank_all(counts, min_support, best, top_k),
        evaluation,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn metrics_score_hits_by_rank() {
        let mut m = Metric::default();
        m.add(&[1, 2, 3], &[1]);
        m.add(&[4, 2, 3], &[2]);
        m.add(&[7, 8], &[9]);
        let row = m.row(Ranking::CoCount);
        assert_eq!(row.anchors, 3);
        assert!((row.hit_rate_at_5 - 2.0 / 3.0).abs() < 1e-12);
        let expected = (1.0 + 1.0 / 3f64.log2()) / 3.0;
        assert!((row.ndcg_at_5 - expected).abs() < 1e-12);
    }

    #[test]
    fn support_filters_pairs_and_rankings_differ() {
        let mut counts = CoPurchase {
            product_orders: vec![0; 4],
            ..CoPurchase::default()
        };
        // Product 0 is a best seller bought with everything; 1 and 2 are a true pair.
        for _ in 0..20 {
            counts.apply(&[0, 3], 1);
        }
        for _ in 0..6 {
            counts.apply(&[1, 2], 1);
        }
        counts.apply(&[0, 1], 1);
        let by_count = rank_all(&counts, 2, Ranking::CoCount, 5);
        assert_eq!(
            by_count[1].iter().map(|c| c.product).collect::<Vec<_>>(),
            vec![2]
        );
        assert!(
            by_count[0].iter().all(|c| c.product != 1),
            "support 1 is filtered"
        );
        let by_lift = rank_all(&counts, 1, Ranking::Lift, 5);
        assert_eq!(by_lift[1][0].product, 2);
    }
}
