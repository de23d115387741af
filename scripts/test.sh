#!/usr/bin/env bash
# `npm test`: install what is missing, then run every test once (or, with arguments such as
# `--project unit` as `npm run test:unit` gives, only those) and end with the plain
# "N passed, N failed" line.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/scripts/setup.sh"
report=$(mktemp /tmp/lifeboat-vitest.XXXXXX.json)
status=0
vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
node "$root/scripts/summarize-tests.mjs" "$report" || status=1
rm -f "$report"
exit $status
