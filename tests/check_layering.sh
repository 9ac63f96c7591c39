#!/usr/bin/env bash
# Fails when a module includes a header from a module it may not depend on (docs/conventions.md):
# common <- agent; common <- jobs, images, vm; engine uses those; server uses engine and below;
# runner may use them all.
set -u
root=${1:-.}
declare -A allowed=(
  [common]="common"
  [agent]="common agent"
  [jobs]="common jobs"
  [images]="common images"
  [vm]="common vm"
  [engine]="common jobs images vm engine"
  [server]="common jobs images vm engine server"
  [runner]="common jobs images vm engine server runner"
)
bad=0
for mod in "${!allowed[@]}"; do
  [ -d "$root/$mod" ] || continue
  while IFS= read -r line; do
    file=${line%%:*}
    inc=$(sed -E 's/.*#include "([a-z]+)\/.*/\1/' <<<"$line")
    if [[ " ${allowed[$mod]} " != *" $inc "* ]]; then
      echo "layering: $file includes $inc/, which $mod/ may not use"
      bad=1
    fi
  done < <(grep -rnE '#include "[a-z]+/' "$root/$mod" --include='*.[ch]' | sed -E 's/^([^:]+):[0-9]+:/\1:/')
done
[ $bad -eq 0 ] && echo "layering: ok"
exit $bad
