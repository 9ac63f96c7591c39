#!/usr/bin/env bash
# Runs the whole test suite from a fresh Debian 12 machine: installs dependencies, builds
# with AddressSanitizer + UndefinedBehaviorSanitizer, fetches the guest kernel bundle, and
# runs every unit, fuzz-replay and integration test (real QEMU VMs) with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build-test}
if [ "$(id -u)" -eq 0 ]; then
	scripts/install-deps.sh
else
	echo "test: not root, assuming dependencies are installed (scripts/install-deps.sh)" >&2
fi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DKCI_SANITIZE=ON -DKCI_FUZZ=OFF >/dev/null
cmake --build "$build" -j"$(nproc)"
scripts/fetch-guest.sh "$PWD/$build/share/kci/guest"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
(cd "$build" && ctest --output-on-failure -j2 "$@")

# The optimised build README's setup command makes: -O2 and _FORTIFY_SOURCE warn about what
# a Debug build does not (an unchecked return value), and warnings are errors.
cmake -S . -B "$build-release" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build-release" -j"$(nproc)"

# libFuzzer needs clang: a separate tree builds the fuzz targets and fuzzes each briefly.
CC=clang cmake -S . -B "$build-fuzz" -DCMAKE_BUILD_TYPE=Debug -DKCI_SANITIZE=ON -DKCI_FUZZ=ON >/dev/null
cmake --build "$build-fuzz" -j"$(nproc)" --target fuzzers
(cd "$build-fuzz" && ctest --output-on-failure -j2 -L fuzzrun)
