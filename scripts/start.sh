#!/usr/bin/env bash
# `npm start`: install what is missing, then bring up the embedded control plane and a runner.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/scripts/setup.sh"
exec node "$root/bin/lifeboat.js" local up "$@"
