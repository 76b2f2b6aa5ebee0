//! marginwise-engine: the pure decision core behind every marginwise Function.
//!
//! Given a customer's precomputed profile, the cart (with unit cost floors and complementary
//! products per line) and the merchant's policy, the engine decides which personalized offer the
//! shopper gets and renders it as line, order and shipping discounts, always together with the
//! reasons for every offer it considered.
//!
//! What it deliberately does not do: it knows nothing about Shopify's generated types, does no IO,
//! reads no clock and no randomness, and cannot fail. A malformed rule or metafield is skipped and
//! reported as a [`Reason`]; the worst outcome is "no personalized offer" with a reason code. That
//! one decision is what lets the same code run inside a Shopify Function (where a panic silently
//! drops every offer), in the pipeline's scenario report and in property tests.
//!
//! Money is `i64` minor units of one currency, rates are basis points, and every arithmetic step is
//! checked: an overflow becomes a reason, never a panic.
//!
//! [`evaluate`] runs one pipeline, one module per step: `policy` (parse the merchant's JSON),
//! `cart` (read prices, costs and metafields into minor units), [`holdout`], `eligibility` (the
//! offer's rules), `reward` and `slots` (the proposed amounts), `cap`, `guard` (the margin floors),
//! then selection and rendering in `evaluate`, the `margin` summary, and the text forms in
//! `render`. `arith` holds the checked, i128-backed arithmetic every step uses.

#![forbid(unsafe_code)]

pub mod format;
pub mod money;

pub use format::{Profile, Segment, VariantData};
pub use money::{Bps, Currency, Money, Rate};
pub mod decision;
pub mod detail;
pub mod policy;
pub mod request;

mod arith;
pub mod bundle;
mod cap;
mod cart;
mod eligibility;
mod evaluate;
mod gate;
mod guard;
pub mod holdout;
mod margin;
mod min_table;
pub mod output;
mod render;
mod reward;
mod slots;

pub use bundle::{BundleDecision, BundleLine, BundleRequest, evaluate_bundles};
pub use evaluate::evaluate;
pub use render::MAX_LOG_LINE_BYTES;

pub use decision::{
    Decision, LineDiscount, MarginSummary, OrderDiscount, Reason, ReasonCode, ShippingDiscount,
};
pub use detail::Detail;
pub use policy::{Policy, PolicySource};
pub use request::{
    CustomerFacts, DeliveryGroup, DiscountClass, DiscountClasses, Line, ProfileInput, Request,
    Target, VariantInput,
};
