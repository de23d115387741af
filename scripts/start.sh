#!/usr/bin/env bash
# `npm start`: install what is missing, then bring up the embedded control plane and a runner.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/scripts/setup.sh"
# The web console the gateway serves at / (rebuilt only when console/ changed).
node --disable-warning=ExperimentalWarning --import tsx "$root/scripts/build-console.ts"
exec node "$root/bin/lifeboat.js" local up "$@"
