#!/usr/bin/env bash
# The whole marginwise test suite, exactly what CI runs (.ci/run calls this script and nothing else).
#
# It installs the wasm target and cargo-insta itself (cargo-insta into $CARGO_TARGET_DIR/tools/bin,
# or target/tools/bin without it). It does not install python3 with pip, which the CDNOW test
# (model-pipeline/tests/cdnow.rs) uses to download its data. It runs:
#   - formatting and clippy (warnings are errors),
#   - every crate's tests through `cargo insta test --check --unreferenced=reject`, so a snapshot that
#     is stale, missing or no longer referenced by any test fails the run,
#   - the Functions' wasm builds (size budgets) and the wasm runner's budget suite run inside
#     `cargo test` (see tests/conformance and tests/runner),
#   - the admin settings page's own tests (extensions/offers-settings: `npm ci` installs its
#     pinned packages from package-lock.json, then `npm test`); they need Node.js 20 or later,
#     which nothing installs, as does the Rust test that holds the page to the engine
#     (model-pipeline/tests/settings_policy.rs).
# Set CARGO_TARGET_DIR to keep the build cache outside the clone (but not for `shopify app build`
# or `deploy`: see README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-unknown-unknown >/dev/null

INSTA_VERSION=1.49.0
tools="${CARGO_TARGET_DIR:-$PWD/target}/tools"
if ! "$tools/bin/cargo-insta" --version 2>/dev/null | grep -q "$INSTA_VERSION"; then
    echo "installing cargo-insta $INSTA_VERSION into $tools"
    cargo install cargo-insta --version "$INSTA_VERSION" --locked --root "$tools" --quiet
fi
export PATH="$tools/bin:$PATH"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== settings page (extensions/offers-settings: npm ci, npm test)"
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null; then
    echo "Node.js 20 or later is needed for the settings page's tests (node: $(node --version 2>&1))" >&2
    exit 1
fi
npm ci --prefix extensions/offers-settings --no-audit --no-fund --loglevel=error
npm test --prefix extensions/offers-settings

echo "== cargo insta test (all tests, snapshots checked)"
cargo insta test --workspace --check --unreferenced=reject
