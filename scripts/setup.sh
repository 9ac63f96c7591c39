#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine to run kci: dependencies, a release build installed
# under /usr/local, and the guest kernel bundle. Run as root from the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${PREFIX:-/usr/local}
scripts/install-deps.sh
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
cmake --build build-release -j"$(nproc)"
cmake --install build-release >/dev/null
scripts/fetch-guest.sh "$prefix/share/kci/guest"
"$prefix/bin/kci" doctor
