#!/usr/bin/env bash
# Runs every check the project has: formatting, clippy, and the whole test suite.
# Installs the system packages first if any is missing.
set -euo pipefail
cd "$(dirname "$0")"
scripts/system-packages.sh
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
