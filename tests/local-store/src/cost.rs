//! Calculated query cost and the leaky bucket, as Shopify's "GraphQL Admin API rate limits" page
//! describes them.
//!
//! Cost: a scalar or enum field costs 0, an object 1, a connection 2 plus its page size times the
//! cost of one node, a mutation 10. The requested cost is computed from the query before it runs
//! (the page size is `first`/`last`); the actual cost uses the number of nodes returned, and the
//! difference is refunded to the bucket. One query may cost at most 1000 (`MAX_COST_EXCEEDED`).
//!
//! Bucket: one per app and shop (here: per server), filling continuously at the plan's restore
//! rate (Standard 100, Advanced 200, Plus 1000, Enterprise 2000 points per second) up to its
//! maximum. Answers seen from Shopify show a maximum of 20 seconds of restore (2000 at 100/s,
//! 20000 at 1000/s); the stand-in uses that unless told otherwise. A query whose requested cost is
//! more than what is available is refused with `THROTTLED` and costs nothing.

use std::time::Instant;

use graphql_parser::query::{Field, Selection, SelectionSet, TypeCondition};

/// One query may cost at most this much.
pub const MAX_QUERY_COST: u64 = 1000;
/// A mutation field costs this much, whatever it returns.
pub const MUTATION_COST: u64 = 10;

/// Fields that are connections in the subset served (their cost is sized by `first`/`last`).
pub const CONNECTION_FIELDS: [&str; 9] = [
    "customers",
    "products",
    "orders",
    "variants",
    "lineItems",
    "metafields",
    "bulkOperations",
    "cartTransforms",
    "shopifyFunctions",
];

/// Shopify's plans and their restore rates (points per second).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Standard,
    Advanced,
    Plus,
    Enterprise,
}

impl Plan {
    pub fn restore_rate(self) -> f64 {
        match self {
            Plan::Standard => 100.0,
            Plan::Advanced => 200.0,
            Plan::Plus => 1000.0,
            Plan::Enterprise => 2000.0,
        }
    }

    pub fn parse(text: &str) -> Option<Plan> {
        Some(match text {
            "standard" => Plan::Standard,
            "advanced" => Plan::Advanced,
            "plus" => Plan::Plus,
            "enterprise" => Plan::Enterprise,
            _ => return None,
        })
    }
}

/// The bucket size Shopify pairs with a restore rate (20 seconds of restore).
pub fn default_maximum(restore_rate: f64) -> f64 {
    restore_rate * 20.0
}

/// What `extensions.cost.throttleStatus` reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleStatus {
    pub maximum_available: f64,
    pub currently_available: u64,
    pub restore_rate: f64,
}

#[derive(Debug, Clone)]
pub struct Bucket {
    maximum: f64,
    restore_rate: f64,
    available: f64,
    last: Instant,
}

impl Bucket {
    pub fn new(maximum: f64, restore_rate: f64, now: Instant) -> Bucket {
        Bucket {
            maximum,
            restore_rate,
            available: maximum,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.available = (self.available + elapsed * self.restore_rate).min(self.maximum);
        self.last = now;
    }

    /// Takes `cost` points if they are there; otherwise takes nothing and returns `false`.
    pub fn try_take(&mut self, cost: u64, now: Instant) -> bool {
        self.refill(now);
        let cost = cost as f64;
        if cost > self.available {
            return false;
        }
        self.available -= cost;
        true
    }

    /// Gives back the part of the requested cost that was not used.
    pub fn refund(&mut self, points: u64, now: Instant) {
        self.refill(now);
        self.available = (self.available + points as f64).min(self.maximum);
    }

    pub fn drain(&mut self, now: Instant) {
        self.refill(now);
        self.available = 0.0;
    }

    pub fn reconfigure(&mut self, maximum: f64, restore_rate: f64, now: Instant) {
        self.refill(now);
        self.maximum = maximum;
        self.restore_rate = restore_rate;
        self.available = self.available.min(maximum);
    }

    pub fn status(&mut self, now: Instant) -> ThrottleStatus {
        self.refill(now);
        ThrottleStatus {
            maximum_available: self.maximum,
            currently_available: self.available.floor().max(0.0) as u64,
            restore_rate: self.restore_rate,
        }
    }
}

/// How the cost walk sees the document: fragments are looked up by name, variables give sizes.
pub trait CostContext {
    /// A named fragment: its type condition and selection.
    fn fragment(&self, name: &str) -> Option<(&str, &SelectionSet<'static, String>)>;
    fn int_argument(&self, field: &Field<'static, String>, name: &str) -> Option<i64>;
    fn list_len_argument(&self, field: &Field<'static, String>, name: &str) -> Option<usize>;
}

/// Interfaces a fragment can be conditioned on: such a fragment applies to every type.
const INTERFACES: [&str; 5] = [
    "Node",
    "HasMetafields",
    "HasCompareDigest",
    "LegacyInteroperability",
    "DisplayableError",
];

/// The requested cost of a query's selection set. Fields and fragments on interfaces count for
/// every type; fragments on concrete types count for their type only, and the most expensive
/// type is charged, as Shopify charges an interface or union field.
pub fn selection_cost(ctx: &dyn CostContext, selection: &SelectionSet<'static, String>) -> u64 {
    fn add<'s>(
        by_type: &mut Vec<(&'s str, u64)>,
        common: &mut u64,
        condition: Option<&'s str>,
        cost: u64,
    ) {
        match condition {
            Some(type_name) if !INTERFACES.contains(&type_name) => {
                match by_type.iter_mut().find(|(name, _)| *name == type_name) {
                    Some((_, total)) => *total = total.saturating_add(cost),
                    None => by_type.push((type_name, cost)),
                }
            }
            _ => *common = common.saturating_add(cost),
        }
    }
    let mut common: u64 = 0;
    let mut by_type: Vec<(&str, u64)> = Vec::new();
    for item in &selection.items {
        match item {
            Selection::Field(field) => common = common.saturating_add(field_cost(ctx, field)),
            Selection::FragmentSpread(spread) => {
                if let Some((condition, fragment)) = ctx.fragment(&spread.fragment_name) {
                    let cost = selection_cost(ctx, fragment);
                    add(&mut by_type, &mut common, Some(condition), cost);
                }
            }
            Selection::InlineFragment(inline) => {
                let condition = inline
                    .type_condition
                    .as_ref()
                    .map(|TypeCondition::On(name)| name.as_str());
                let cost = selection_cost(ctx, &inline.selection_set);
                add(&mut by_type, &mut common, condition, cost);
            }
        }
    }
    let typed = by_type.iter().map(|(_, cost)| *cost).max().unwrap_or(0);
    common.saturating_add(typed)
}

/// The page size of a connection field: `first` or `last`, 0 when neither is given (the query is
/// refused in that case anyway).
pub fn page_size(ctx: &dyn CostContext, field: &Field<'static, String>) -> u64 {
    ctx.int_argument(field, "first")
        .or_else(|| ctx.int_argument(field, "last"))
        .map_or(0, |n| u64::try_from(n).unwrap_or(0))
}

/// The cost of one node of a connection: the node object (1) and what is selected inside it,
/// found under `edges { node }` or `nodes`.
pub fn connection_node_cost(ctx: &dyn CostContext, field: &Field<'static, String>) -> u64 {
    let mut node_cost = 1;
    for inner in fields_of(ctx, &field.selection_set) {
        match inner.name.as_str() {
            "edges" => {
                for edge_field in fields_of(ctx, &inner.selection_set) {
                    if edge_field.name == "node" {
                        node_cost =
                            node_cost.max(1 + selection_cost(ctx, &edge_field.selection_set));
                    }
                }
            }
            "nodes" => {
                node_cost = node_cost.max(1 + selection_cost(ctx, &inner.selection_set));
            }
            _ => {}
        }
    }
    node_cost
}

fn field_cost(ctx: &dyn CostContext, field: &Field<'static, String>) -> u64 {
    if CONNECTION_FIELDS.contains(&field.name.as_str()) {
        let size = page_size(ctx, field);
        return size
            .saturating_mul(connection_node_cost(ctx, field))
            .saturating_add(2);
    }
    if field.name == "nodes" {
        let ids = ctx.list_len_argument(field, "ids").unwrap_or(0) as u64;
        return ids.saturating_mul(1 + selection_cost(ctx, &field.selection_set));
    }
    if field.selection_set.items.is_empty() {
        return 0;
    }
    1 + selection_cost(ctx, &field.selection_set)
}

/// The fields directly inside a selection set, through fragments.
pub fn fields_of<'d>(
    ctx: &'d dyn CostContext,
    selection: &'d SelectionSet<'static, String>,
) -> Vec<&'d Field<'static, String>> {
    let mut out = Vec::new();
    collect(ctx, selection, &mut out, 0);
    out
}

fn collect<'d>(
    ctx: &'d dyn CostContext,
    selection: &'d SelectionSet<'static, String>,
    out: &mut Vec<&'d Field<'static, String>>,
    depth: usize,
) {
    // Fragment cycles are invalid GraphQL; the depth bound keeps a malicious one from looping.
    if depth > 32 {
        return;
    }
    for item in &selection.items {
        match item {
            Selection::Field(field) => out.push(field),
            Selection::FragmentSpread(spread) => {
                if let Some((_, fragment)) = ctx.fragment(&spread.fragment_name) {
                    collect(ctx, fragment, out, depth + 1);
                }
            }
            Selection::InlineFragment(inline) => {
                collect(ctx, &inline.selection_set, out, depth + 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_restores_at_its_rate_and_never_above_its_maximum() {
        let start = Instant::now();
        let mut bucket = Bucket::new(2000.0, 100.0, start);
        assert!(bucket.try_take(1990, start));
        assert_eq!(bucket.status(start).currently_available, 10);
        assert!(!bucket.try_take(11, start), "11 > 10 available");
        let later = start + Duration::from_millis(500);
        assert_eq!(bucket.status(later).currently_available, 60);
        let much_later = start + Duration::from_secs(3600);
        assert_eq!(bucket.status(much_later).currently_available, 2000);
        bucket.refund(500, much_later);
        assert_eq!(bucket.status(much_later).currently_available, 2000);
    }
}
