#!/usr/bin/env bash
# `npm run bench -- <name>`: install what is missing (scripts/setup.sh), then run the benchmark.
# Progress on stderr; the last stdout line is the benchmark's JSON summary.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/scripts/setup.sh"
exec node --disable-warning=ExperimentalWarning --import tsx "$root/bench/main.ts" "$@"
