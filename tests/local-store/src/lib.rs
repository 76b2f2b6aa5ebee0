//! local-store: a local stand-in for the Shopify Admin API, not Shopify.
//!
//! A loopback HTTP server that speaks the subset of Admin GraphQL 2026-04 the pipeline uses:
//! `metafieldsSet` (25 per call, atomic, validated by type and size, `compareDigest`
//! compare-and-set), `metafieldsDelete`, reading metafields back through `customer`, `product`,
//! `productVariant`, `order`, `node` and `nodes`, the root connections `customers`, `products`,
//! `orders`, bulk queries and bulk mutations with staged uploads and the bulk-operation
//! lifecycle, the client credentials grant that exchanges an app's client id and secret for a
//! token (`POST /admin/oauth/access_token`), the automatic app discounts and cart transforms
//! that run an app's Functions (created with their configuration metafields, one cart transform
//! per function), and Shopify's calculated query cost with a leaky bucket per app and shop. It is seeded from the
//! bulk-operation JSONL that `marginwise generate` writes, keeps everything in memory, and can
//! inject faults (5xx bursts, dropped connections before or after a write was applied, slow
//! answers, THROTTLED storms) while counting every write, so tests can prove that a client
//! loses nothing and writes nothing twice.
//!
//! What it deliberately does not do: it serves no field its seed data does not carry (other
//! fields are reported unknown instead of invented), validates only the common metafield types,
//! has no metafield definitions, no webhooks and no persistence. A behaviour that differs from
//! Shopify's documentation is a bug in this crate; the known differences are listed in its README.
//!
//! ```no_run
//! let store = local_store::LocalStore::start(local_store::Config::default())?;
//! println!("{} (token {})", store.url(), store.token());
//! store.shutdown();
//! # Ok::<(), local_store::StartError>(())
//! ```

mod bulk;
mod cost;
mod data;
mod exec;
mod functions;
mod metafields;
mod oauth;
mod out;
mod server;
mod state;

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

pub use cost::{MAX_QUERY_COST, MUTATION_COST, Plan};
pub use data::{SeedError, StoreData};
pub use functions::{
    AppFunction, CartTransformRecord, CodeDiscountRecord, CombinesWith, DiscountRecord, FunctionApi,
};
pub use metafields::{
    DEFAULT_VALUE_LIMIT, JSON_VALUE_LIMIT, MetafieldRecord, SET_BATCH_LIMIT, WriteCount,
    digest as metafield_digest,
};
pub use oauth::{AppCredentials, MARGINWISE_SCOPES, TOKEN_PATH};
pub use server::GRAPHQL_PATH;
pub use state::{BulkHold, Burst, Config, Faults, Stats};

use state::{Shared, lock};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the local store listens on loopback addresses only, not {0}")]
    NotLoopback(std::net::SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Seed(#[from] SeedError),
}

/// Starts servers; see [`LocalStore::start`].
pub struct LocalStore;

impl LocalStore {
    /// Seeds the store, binds (127.0.0.1, port 0 by default) and serves on a background thread.
    pub fn start(config: Config) -> Result<Handle, StartError> {
        if !config.bind.ip().is_loopback() {
            return Err(StartError::NotLoopback(config.bind));
        }
        let data = match (&config.data, &config.seed_dir) {
            (Some(data), _) => Arc::clone(data),
            (None, Some(dir)) => Arc::new(StoreData::load_dir(dir)?),
            (None, None) => Arc::new(StoreData::default()),
        };
        let listener = TcpListener::bind(config.bind).map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })?;
        let base_url = format!("http://{addr}");
        let shared = Arc::new(Shared::new(&config, data, base_url.clone()));
        let server_shared = Arc::clone(&shared);
        let thread = std::thread::spawn(move || server::serve(listener, server_shared));
        Ok(Handle {
            base_url,
            addr,
            shared,
            thread: Some(thread),
        })
    }
}

/// A running store. Dropping it shuts the server down.
pub struct Handle {
    base_url: String,
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Handle {
    /// The GraphQL endpoint (`http://127.0.0.1:<port>/admin/api/2026-04/graphql.json`).
    pub fn url(&self) -> String {
        format!("{}{GRAPHQL_PATH}", self.base_url)
    }

    /// `http://127.0.0.1:<port>`: control endpoints live under `/_control`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The access token requests must send as `X-Shopify-Access-Token` (tokens issued by the
    /// client credentials grant are accepted too).
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// Every token the client credentials grant issued so far is refused from now on, as
    /// Shopify refuses one a day old; a client has to exchange its credentials again.
    pub fn expire_tokens(&self) {
        lock(&self.shared.grants).expire_all();
    }

    /// Whether a refresh would take `refresh_token` now: refresh tokens are revoked once the
    /// access token their refresh issued is used.
    pub fn refresh_token_valid(&self, refresh_token: &str) -> bool {
        lock(&self.shared.grants).refresh_token_valid(refresh_token, std::time::Instant::now())
    }

    /// The namespace `$app` expands to.
    pub fn app_namespace(&self) -> String {
        metafields::expand_namespace("$app", self.shared.app_id)
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Writes per metafield since the counters were reset.
    pub fn write_counts(&self) -> Vec<WriteCount> {
        lock(&self.shared.metafields).write_counts()
    }

    /// Every stored metafield, ordered by owner, namespace and key.
    pub fn metafields(&self) -> Vec<MetafieldRecord> {
        lock(&self.shared.metafields).all()
    }

    /// Every automatic app discount created, oldest first.
    pub fn discounts(&self) -> Vec<DiscountRecord> {
        lock(&self.shared.function_owners).discounts.clone()
    }

    /// Adds a code discount of the app's discount Function `function_handle`, as a merchant makes
    /// one in the admin, holding `metafields` (key, type, value) in the app's namespace. Its GID;
    /// an error names each metafield the store refused.
    pub fn add_code_discount(
        &self,
        function_handle: &str,
        title: &str,
        code: &str,
        metafields: &[(&str, &str, &str)],
    ) -> Result<String, String> {
        let inputs: Vec<metafields::SetInput> = metafields
            .iter()
            .map(|(key, kind, value)| metafields::SetInput {
                owner_id: String::new(),
                namespace: None,
                key: (*key).to_string(),
                kind: Some((*kind).to_string()),
                value: (*value).to_string(),
                compare_digest: metafields::CompareDigest::Absent,
            })
            .collect();
        functions::add_code_discount(&self.shared, function_handle, title, code, &inputs).map_err(
            |errors| {
                errors
                    .iter()
                    .map(|e| format!("{e:?}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        )
    }

    /// Every code discount added with [`Handle::add_code_discount`], oldest first.
    pub fn code_discounts(&self) -> Vec<CodeDiscountRecord> {
        lock(&self.shared.function_owners).code_discounts.clone()
    }

    /// Every cart transform created, oldest first.
    pub fn cart_transforms(&self) -> Vec<CartTransformRecord> {
        lock(&self.shared.function_owners).cart_transforms.clone()
    }

    /// Replaces the faults; their request clocks restart at zero.
    pub fn set_faults(&self, faults: Faults) {
        server::apply_control(&self.shared, Some(faults), None, None, false, false, None);
    }

    /// Sets the restore rate; the bucket size follows (20 s of restore) unless given.
    pub fn set_restore_rate(&self, restore_rate: f64, maximum_available: Option<f64>) {
        server::apply_control(
            &self.shared,
            None,
            Some(restore_rate),
            maximum_available,
            false,
            false,
            None,
        );
    }

    pub fn drain_bucket(&self) {
        server::apply_control(&self.shared, None, None, None, true, false, None);
    }

    pub fn reset_stats(&self) {
        server::apply_control(&self.shared, None, None, None, false, true, None);
    }

    pub fn set_bulk_hold(&self, hold: BulkHold) {
        server::apply_control(&self.shared, None, None, None, false, false, Some(hold));
    }

    /// Stops accepting connections; open connections close within a fraction of a second.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.bulk_wakeup.notify_all();
        // The accept loop blocks in `accept`: one connection wakes it to see the flag.
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop();
        }
    }
}
