//! The Functions' input queries (the `.graphql` files beside this crate) and the reader of their
//! answers.
//!
//! Both Functions and both read floors read their input through this crate, straight from
//! Shopify's Wasm API values into the engine's plain request types. It replaces the readers the
//! `shopify_function` macros generate, because reading is most of what a Function costs (see
//! ARCHITECTURE.md, "Instruction budgets") and a hand-written reader can read less:
//!
//! - **Short aliases on every per-line field** (`q: quantity`, `c: cost`, ...). The Wasm API
//!   provider finds a key by comparing it with every key before it in the object, so on a 200-line
//!   cart long keys cost about 200 K instructions. The generated readers need the schema's names.
//! - **Keys interned once.** A per-line key is passed to the provider as an interned id, not copied
//!   into its memory on every lookup.
//! - **Lines by position.** Once the first line shows the answer keeps the query's key order, every
//!   line's fields are read by position instead of by key (`line::Layout`): about 1.1 K
//!   instructions a line fewer on the offers query, 1.5 K on the cart transform's.
//! - **No `__typename`.** The generated reader needs it to pick the union variant; this one only
//!   asks for the fields of `... on ProductVariant` and finds them absent on other merchandise.
//!
//! The reader never fails and never panics: a missing or mistyped value reads as absent (or as a
//! quantity of 0, or an empty currency code), which the engine reports as a reason, so the worst
//! case is no offer. The tests check every key the reader asks for against the query files.

pub mod bundles;
mod line;
pub mod offers;
mod value;

pub use bundles::BundlesInput;
pub use line::line_key;
pub use offers::OffersInput;
