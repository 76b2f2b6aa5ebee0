#!/usr/bin/env bash
# The README's main job: run marginwise end to end on the bundled sample store (no Shopify account).
# Extra arguments go to `marginwise demo` (try `--help`).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-unknown-unknown >/dev/null
exec cargo run --quiet --release --locked -p model-pipeline --bin marginwise -- demo "$@"
