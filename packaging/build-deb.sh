#!/usr/bin/env bash
# Builds the Debian package (target/debian/avatar-studio_<version>_<arch>.deb) with cargo-deb,
# installing cargo-deb first if it is missing. Runtime dependencies are computed by
# dpkg-shlibdeps from the binary ("$auto" in Cargo.toml's [package.metadata.deb]).
#
#   packaging/build-deb.sh               a release build: the package to give users
#   packaging/build-deb.sh --from-debug  packages the debug binary the test run already built
#                                        (CI: proves the recipe without a second full build)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo deb --version >/dev/null 2>&1; then
  echo "Installing cargo-deb..." >&2
  cargo install cargo-deb --locked --version 3.8.0
fi
if [ "${1:-}" = "--from-debug" ]; then
  test -x target/debug/avatar-studio || cargo build --bin avatar-studio
  cargo deb --no-build --profile dev
else
  cargo deb
fi
ls -1 target/debian/*.deb
