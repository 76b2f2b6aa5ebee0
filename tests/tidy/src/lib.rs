//! tidy: the architecture invariants of ARCHITECTURE.md, checked by `cargo test` instead of by
//! reviewers' memory.
//!
//! The checks read source files and manifests as text. They are deliberately blunt (a forbidden
//! word anywhere in engine code fails), because a false alarm costs a rename while a missed float in
//! the money path costs margin.
