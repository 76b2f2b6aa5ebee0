//! conformance: checks that what we hand Shopify is what Shopify accepts, before Shopify sees it.
//!
//! The checks live in `tests/` and read repository files only:
//! - `schema.rs`: every type, field, argument, enum value, union member, input field and scalar in
//!   our hand-written schema subsets exists in Shopify's published schema with exactly the same type
//!   (our subsets drive code generation, so a typo there would generate code for fields Shopify
//!   never sends or outputs Shopify rejects);
//! - `query_cost.rs`: every Function input query stays within Shopify's size and cost limits;
//! - `wasm_size.rs`: every Function builds with the command in its `shopify.extension.toml` and
//!   fits both Shopify's module limit and our tighter budget.
//!
//! What it deliberately does not do: it does not ship anything and has no runtime code. The
//! published reference schemas live outside the repository (`../shared/reference/shopify/`, never
//! copied in); where they are absent the schema check says so plainly and passes, so a fresh
//! clone still runs the rest.
#![forbid(unsafe_code)]
