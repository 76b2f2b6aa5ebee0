//! Pacing to Shopify's cost-based leaky bucket.
//!
//! Every answer carries `extensions.cost`: what the query was expected to cost, what it cost, and
//! the bucket after it (`maximumAvailable`, `currentlyAvailable`, `restoreRate`). The [`Pacer`]
//! keeps a model of that bucket: from the last status it projects how many points the server has
//! now (restored at `restoreRate` since the answer arrived, never above the maximum) and delays a
//! request until the points it is expected to cost are there. The expected cost of an operation
//! is the `requestedQueryCost` of its last answer: the server checks the requested cost, not the
//! actual one, before it runs a query.
//!
//! The projection starts from the moment the answer was received, not when the server computed it,
//! so the model is slightly pessimistic (it ignores restoration during the answer's transit);
//! that keeps the client just below the server instead of just above it, which is what turns
//! "throttled now and then" into "sustained at the restore rate".

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// `extensions.cost.throttleStatus`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleStatus {
    pub maximum_available: f64,
    pub currently_available: f64,
    pub restore_rate: f64,
}

/// `extensions.cost`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryCost {
    pub requested_query_cost: Option<f64>,
    pub actual_query_cost: Option<f64>,
    pub throttle_status: ThrottleStatus,
}

/// The client's model of the server's bucket.
#[derive(Debug, Clone, Default)]
pub struct Pacer {
    last: Option<(ThrottleStatus, Instant)>,
    expected_cost: HashMap<&'static str, f64>,
    /// Points the answers say were spent (actual cost, or requested when actual is absent).
    pub points_spent: f64,
    /// Time spent waiting for points.
    pub waited: Duration,
}

impl Pacer {
    pub fn new() -> Pacer {
        Pacer::default()
    }

    /// Points the server is projected to have at `now`, if a status was seen.
    pub fn available_at(&self, now: Instant) -> Option<f64> {
        let (status, at) = self.last?;
        let restored = now.saturating_duration_since(at).as_secs_f64() * status.restore_rate;
        Some((status.currently_available + restored).min(status.maximum_available))
    }

    /// The last status seen.
    pub fn status(&self) -> Option<ThrottleStatus> {
        self.last.map(|(s, _)| s)
    }

    /// The cost `operation` is expected to have (its last requested cost, else `default`).
    pub fn expected_cost(&self, operation: &'static str, default: f64) -> f64 {
        self.expected_cost
            .get(operation)
            .copied()
            .unwrap_or(default)
    }

    /// How long to wait before sending a request expected to cost `cost` points.
    pub fn delay_for(&self, cost: f64, now: Instant) -> Duration {
        let (Some(available), Some((status, _))) = (self.available_at(now), self.last) else {
            // Nothing known yet: the first answer tells.
            return Duration::ZERO;
        };
        // A request that costs more than the bucket holds can never wait its way in: the server
        // answers MAX_COST_EXCEEDED or lets it run on a full bucket. Waiting for the full bucket is
        // the best the client can do.
        let needed = cost.min(status.maximum_available);
        if available >= needed || status.restore_rate <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((needed - available) / status.restore_rate)
    }

    /// Records an answer (successful or throttled) of `operation` received at `now`.
    pub fn observe(&mut self, operation: &'static str, cost: &QueryCost, now: Instant) {
        if let Some(requested) = cost.requested_query_cost {
            self.expected_cost.insert(operation, requested);
        }
        self.last = Some((cost.throttle_status, now));
    }

    /// Records the points a successful answer spent.
    pub fn spent(&mut self, cost: &QueryCost) {
        self.points_spent += cost
            .actual_query_cost
            .or(cost.requested_query_cost)
            .unwrap_or(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(requested: f64, available: f64) -> QueryCost {
        QueryCost {
            requested_query_cost: Some(requested),
            actual_query_cost: Some(requested),
            throttle_status: ThrottleStatus {
                maximum_available: 2000.0,
                currently_available: available,
                restore_rate: 100.0,
            },
        }
    }

    #[test]
    fn no_delay_before_the_first_answer() {
        let pacer = Pacer::new();
        assert_eq!(pacer.delay_for(10.0, Instant::now()), Duration::ZERO);
        assert_eq!(pacer.expected_cost("metafieldsSet", 10.0), 10.0);
    }

    #[test]
    fn waits_exactly_for_the_missing_points() {
        let mut pacer = Pacer::new();
        let t0 = Instant::now();
        pacer.observe("metafieldsSet", &cost(10.0, 4.0), t0);
        // 6 points missing at 100 points per second: 60 ms.
        let delay = pacer.delay_for(10.0, t0);
        assert!((delay.as_secs_f64() - 0.06).abs() < 1e-9, "{delay:?}");
        // 30 ms later only 3 points are missing.
        let delay = pacer.delay_for(10.0, t0 + Duration::from_millis(30));
        assert!((delay.as_secs_f64() - 0.03).abs() < 1e-9, "{delay:?}");
        assert_eq!(
            pacer.delay_for(10.0, t0 + Duration::from_millis(60)),
            Duration::ZERO
        );
    }

    #[test]
    fn the_projection_never_exceeds_the_bucket() {
        let mut pacer = Pacer::new();
        let t0 = Instant::now();
        pacer.observe("q", &cost(10.0, 1990.0), t0);
        assert_eq!(
            pacer.available_at(t0 + Duration::from_secs(60)),
            Some(2000.0)
        );
        // A request larger than the bucket waits for a full bucket, not forever.
        let delay = pacer.delay_for(5000.0, t0);
        assert!((delay.as_secs_f64() - 0.1).abs() < 1e-9, "{delay:?}");
    }

    #[test]
    fn the_expected_cost_follows_the_last_requested_cost() {
        let mut pacer = Pacer::new();
        let t0 = Instant::now();
        pacer.observe("nodes", &cost(52.0, 1000.0), t0);
        assert_eq!(pacer.expected_cost("nodes", 1.0), 52.0);
        pacer.spent(&cost(52.0, 1000.0));
        pacer.spent(&QueryCost {
            requested_query_cost: Some(10.0),
            actual_query_cost: Some(7.0),
            throttle_status: cost(0.0, 0.0).throttle_status,
        });
        assert_eq!(pacer.points_spent, 59.0);
    }

    /// A simulated server bucket and a client that sends back to back, pacing with the model:
    /// the client uses the restore rate fully and is never refused.
    #[test]
    fn a_paced_client_sustains_the_restore_rate_in_simulation() {
        let (maximum, restore, request_cost) = (2000.0_f64, 100.0_f64, 10.0_f64);
        let mut server_available = maximum;
        let mut pacer = Pacer::new();
        let t0 = Instant::now();
        let mut now = t0;
        let (mut refused, mut spent) = (0, 0.0);
        let mut last = t0;
        while now < t0 + Duration::from_secs(60) {
            now += pacer.delay_for(pacer.expected_cost("set", request_cost), now);
            server_available = (server_available
                + now.saturating_duration_since(last).as_secs_f64() * restore)
                .min(maximum);
            last = now;
            if server_available + 1e-9 < request_cost {
                refused += 1;
            } else {
                server_available -= request_cost;
                spent += request_cost;
            }
            pacer.observe("set", &cost(request_cost, server_available), now);
            // One millisecond of network per request.
            now += Duration::from_millis(1);
        }
        let elapsed = now.saturating_duration_since(t0).as_secs_f64();
        let share = spent / (maximum + restore * elapsed);
        assert_eq!(refused, 0);
        assert!(share > 0.95, "share {share}");
    }
}
