#!/usr/bin/env bash
# `npm run bench -- <name>`: install what is missing (scripts/setup.sh, then the benchmarks' own
# Debian packages), then run the benchmark.
# Progress on stderr; the last stdout line is the benchmark's JSON summary.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/scripts/setup.sh"

# Debian's virtnbdbackup: the peer the full and incremental benchmarks compare Lifeboat with
# (bench/peer.ts). Only the benchmarks need it, so it is installed here, as setup.sh does its own.
bench_debs=(virtnbdbackup)
bench_missing=()
for p in "${bench_debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || bench_missing+=("$p")
done
if [ ${#bench_missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "bench: need root to install ${bench_missing[*]}" >&2; exit 1; }
  echo "bench: installing Debian packages: ${bench_missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${bench_missing[@]}" >&2
fi

exec node --disable-warning=ExperimentalWarning --import tsx "$root/bench/main.ts" "$@"
