#!/usr/bin/env bash
# Fails when a C file differs from what .clang-format says it should be (docs/conventions.md).
set -euo pipefail
root=${1:-.}
cd "$root"
command -v clang-format >/dev/null || { echo "format: clang-format not installed"; exit 1; }
mapfile -t files < <(find common vm agent engine server runner jobs images tests bench -name '*.[ch]' 2>/dev/null | sort)
clang-format --dry-run --Werror "${files[@]}"
echo "format: ${#files[@]} files ok"
