#!/usr/bin/env bash
# Builds and opens Avatar Studio, first installing the system packages it needs if missing.
set -euo pipefail
cd "$(dirname "$0")"
scripts/system-packages.sh
exec cargo run --release -- "$@"
