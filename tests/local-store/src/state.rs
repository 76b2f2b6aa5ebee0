//! Configuration, injectable faults, counters, and the state every connection shares.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::bulk::BulkState;
use crate::cost::{Bucket, Plan, default_maximum};
use crate::data::StoreData;
use crate::functions::{AppFunction, FunctionOwners};
use crate::metafields::Metafields;
use crate::oauth::{AppCredentials, Grants};

/// How a [`crate::LocalStore`] starts.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; always a loopback address (port 0 picks a free port).
    pub bind: SocketAddr,
    /// The `X-Shopify-Access-Token` every Admin API request must carry.
    pub token: String,
    /// The app id `$app` namespaces expand to (`app--<id>`).
    pub app_id: u64,
    /// A folder with `customers.jsonl`, `products.jsonl`, `orders.jsonl` (what `marginwise
    /// generate` writes); `None` with [`Config::data`] also `None` starts an empty store.
    pub seed_dir: Option<PathBuf>,
    /// Already-loaded store data (takes precedence over `seed_dir`).
    pub data: Option<Arc<StoreData>>,
    /// Points restored per second.
    pub restore_rate: f64,
    /// Bucket size; `None` means 20 seconds of restore, as Shopify pairs them.
    pub maximum_available: Option<f64>,
    /// Bulk operations allowed to be created or running at once.
    pub max_bulk_operations: usize,
    pub faults: Faults,
    pub bulk_hold: BulkHold,
    /// The functions of the app the stand-in plays, which discounts and cart transforms name by
    /// handle (default: marginwise's `offers` and `bundles`).
    pub functions: Vec<AppFunction>,
    /// The app's client id and secret for the client credentials grant
    /// (`POST /admin/oauth/access_token`); `None` (the default) plays a store the app is not
    /// installed on: every exchange is refused with HTTP 400.
    pub client_credentials: Option<AppCredentials>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: "shpat_local_store_token".to_string(),
            app_id: 7_700_000,
            seed_dir: None,
            data: None,
            restore_rate: Plan::Standard.restore_rate(),
            maximum_available: None,
            max_bulk_operations: 5,
            faults: Faults::default(),
            bulk_hold: BulkHold::None,
            functions: AppFunction::marginwise(),
            client_credentials: None,
        }
    }
}

/// A periodic fault: of every `every` counted requests, the last `length` are hit (so the first
/// `every - length` pass). `writes_only` counts only requests that carry a mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Burst {
    pub every: u64,
    #[serde(default = "one")]
    pub length: u64,
    #[serde(default)]
    pub writes_only: bool,
    /// HTTP status for 5xx bursts (default 503).
    #[serde(default)]
    pub status: Option<u16>,
    /// Delay for slow answers, milliseconds.
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

fn one() -> u64 {
    1
}

impl Burst {
    /// Whether request number `n` (1-based, counted since the faults were set) is hit.
    pub fn hits(&self, n: u64) -> bool {
        if self.every == 0 || n == 0 {
            return false;
        }
        let length = self.length.min(self.every);
        (n - 1) % self.every >= self.every - length
    }
}

/// Injectable faults. Set at start, through [`crate::Handle::set_faults`] or `POST /_control`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Answer an HTTP 5xx without doing anything.
    pub error_5xx: Option<Burst>,
    /// Close the connection without an answer, before doing anything.
    pub drop_before: Option<Burst>,
    /// Do the request (writes are applied) and then close the connection without an answer: the
    /// client cannot know whether its write happened.
    pub drop_after: Option<Burst>,
    /// Answer after `delay_ms`.
    pub slow: Option<Burst>,
    /// The next this-many GraphQL requests are answered `THROTTLED` (the bucket is drained first,
    /// so `throttleStatus` agrees).
    pub throttle_storm: u64,
    /// Bulk operations stop with `FAILED` / `INTERNAL_SERVER_ERROR` after this many objects,
    /// leaving a `partialDataUrl`.
    pub bulk_fail_after: Option<u64>,
}

/// Where new bulk operations wait (lets tests see each lifecycle state without timing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BulkHold {
    #[default]
    None,
    Created,
    Running,
}

/// Counters for the fault tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Authenticated GraphQL requests received.
    pub graphql_requests: u64,
    /// `metafieldsSet` / `metafieldsDelete` executions (HTTP calls and bulk mutation lines).
    pub write_calls: u64,
    /// Metafields written (one per input of an accepted `metafieldsSet`, or of a discount or cart
    /// transform mutation's `metafields`).
    pub writes_applied: u64,
    /// Writes that stored the value (and type) the metafield already had.
    pub duplicate_writes: u64,
    pub deletes_applied: u64,
    /// Write calls that changed nothing because of `userErrors` or a top-level error.
    pub rejected_calls: u64,
    pub throttled: u64,
    pub max_cost_exceeded: u64,
    pub injected_5xx: u64,
    pub dropped_before: u64,
    pub dropped_after: u64,
    pub slowed: u64,
    pub bulk_operations: u64,
    pub staged_uploads: u64,
    /// Metafields currently stored.
    pub metafields_stored: u64,
    /// Metafields written more than once since the counters were reset.
    pub metafields_written_more_than_once: u64,
    /// Access tokens issued by a grant (client credentials, code, refresh).
    pub tokens_granted: u64,
    /// Of those, tokens issued by a refresh.
    pub tokens_refreshed: u64,
    /// Grants refused (HTTP 400).
    pub grants_refused: u64,
    /// GraphQL requests refused with HTTP 401 (no valid access token).
    pub unauthorized: u64,
}

/// Fault bookkeeping: the configured faults and the request clocks they count on.
#[derive(Debug, Default)]
pub struct FaultState {
    pub faults: Faults,
    pub requests: u64,
    pub write_requests: u64,
}

/// What one request should suffer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FaultDecision {
    pub error_5xx: Option<u16>,
    pub drop_before: bool,
    pub drop_after: bool,
    pub delay_ms: u64,
    pub throttle: bool,
}

impl FaultState {
    pub fn set(&mut self, faults: Faults) {
        self.faults = faults;
        self.requests = 0;
        self.write_requests = 0;
    }

    /// Advances the clocks for one GraphQL request and decides its faults.
    pub fn decide(&mut self, is_write: bool) -> FaultDecision {
        self.requests += 1;
        if is_write {
            self.write_requests += 1;
        }
        let (all, writes) = (self.requests, self.write_requests);
        let hit = |burst: &Option<Burst>| {
            burst.is_some_and(|b| {
                if b.writes_only {
                    is_write && b.hits(writes)
                } else {
                    b.hits(all)
                }
            })
        };
        let mut decision = FaultDecision {
            drop_before: hit(&self.faults.drop_before),
            drop_after: hit(&self.faults.drop_after),
            ..FaultDecision::default()
        };
        if hit(&self.faults.error_5xx) {
            decision.error_5xx = Some(self.faults.error_5xx.and_then(|b| b.status).unwrap_or(503));
        }
        if hit(&self.faults.slow) {
            decision.delay_ms = self.faults.slow.and_then(|b| b.delay_ms).unwrap_or(2000);
        }
        if self.faults.throttle_storm > 0 {
            self.faults.throttle_storm -= 1;
            decision.throttle = true;
        }
        decision
    }
}

/// Everything the server threads share.
pub struct Shared {
    pub token: String,
    /// The client credentials grant and the tokens it issued (accepted beside `token`).
    pub grants: Mutex<Grants>,
    pub app_id: u64,
    pub max_bulk_operations: usize,
    pub base_url: String,
    pub data: Arc<StoreData>,
    pub metafields: Mutex<Metafields>,
    pub functions: Vec<AppFunction>,
    /// Discounts and cart transforms. Lock order: this before `metafields`, never the reverse.
    pub function_owners: Mutex<FunctionOwners>,
    pub bucket: Mutex<Bucket>,
    pub bulk: Mutex<BulkState>,
    pub bulk_hold: Mutex<BulkHold>,
    pub bulk_wakeup: Condvar,
    /// Staged uploads by key, and result files by path.
    pub files: Mutex<HashMap<String, Arc<Vec<u8>>>>,
    pub faults: Mutex<FaultState>,
    pub stats: Mutex<Stats>,
    pub shutdown: AtomicBool,
}

impl Shared {
    pub fn new(config: &Config, data: Arc<StoreData>, base_url: String) -> Shared {
        let maximum = config
            .maximum_available
            .unwrap_or_else(|| default_maximum(config.restore_rate));
        let faults = FaultState {
            faults: config.faults.clone(),
            ..FaultState::default()
        };
        Shared {
            token: config.token.clone(),
            grants: Mutex::new(Grants::new(config.client_credentials.clone())),
            app_id: config.app_id,
            max_bulk_operations: config.max_bulk_operations,
            base_url,
            data,
            metafields: Mutex::new(Metafields::new()),
            functions: config.functions.clone(),
            function_owners: Mutex::new(FunctionOwners::default()),
            bucket: Mutex::new(Bucket::new(maximum, config.restore_rate, Instant::now())),
            bulk: Mutex::new(BulkState::default()),
            bulk_hold: Mutex::new(config.bulk_hold),
            bulk_wakeup: Condvar::new(),
            files: Mutex::new(HashMap::new()),
            faults: Mutex::new(faults),
            stats: Mutex::new(Stats::default()),
            shutdown: AtomicBool::new(false),
        }
    }

    /// The counters, with the metafield totals filled in.
    pub fn stats(&self) -> Stats {
        let mut stats = lock(&self.stats).clone();
        let metafields = lock(&self.metafields);
        stats.metafields_stored = metafields.len() as u64;
        stats.metafields_written_more_than_once = metafields.written_more_than_once();
        stats
    }
}

/// Locks a mutex; a thread that panicked while holding it cannot leave these plain-data states
/// half-updated in a way that matters more than losing the whole server, so the poison is ignored.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The current time as Shopify writes `DateTime` values (`2026-04-01T12:00:00Z`).
pub fn now_rfc3339() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format_rfc3339(i64::try_from(seconds).unwrap_or(0))
}

/// Formats Unix seconds as UTC RFC 3339 (`2026-04-01T12:00:00Z`); a time outside the years jiff
/// represents (-9999 to 9999) as the Unix epoch.
pub fn format_rfc3339(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_like_shopify() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_704_067_200), "2024-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_709_251_199), "2024-02-29T23:59:59Z");
    }

    #[test]
    fn a_burst_hits_the_last_requests_of_each_window() {
        let burst = Burst {
            every: 5,
            length: 2,
            writes_only: false,
            status: None,
            delay_ms: None,
        };
        let hit: Vec<u64> = (1..=10).filter(|n| burst.hits(*n)).collect();
        assert_eq!(hit, vec![4, 5, 9, 10]);
    }
}
