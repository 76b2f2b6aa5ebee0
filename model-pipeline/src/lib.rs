//! model-pipeline: turns a store's history into the scores the checkout Functions read.
//!
//! (This crate's opening paragraph is completed as its modules land.)

pub mod models;
