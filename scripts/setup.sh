#!/usr/bin/env bash
# Installs what Lifeboat needs on a fresh Debian 12 machine, idempotently: the npm packages
# (Node 22 among them, from the npm registry) and the Debian packages. Sourced by start.sh and
# test.sh so that nothing is ever done by hand. Prints what it does on stderr.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
say() { echo "setup: $*" >&2; }

# Debian packages: Java for DynamoDB Local; the hypervisor tools the runner drives (libvirt,
# qemu, nbd tools); restic, rsync and ssh for the datastores and their tests; systemd for
# `systemd-analyze verify` of the runner's unit (test/e2e/install.test.ts: it needs no running systemd);
# the Ceph tools the rbd disk driver drives (ceph-common: rbd, ceph), the daemons of the tests'
# one-node cluster (test/helpers/ceph.ts) and QEMU's rbd block driver (qemu-block-extra);
# chromium for the web console's browser tests (playwright-core drives it; no browser download);
# python3 for a test's parent process that reaps its child late (runner/orphans.test.ts: Node
# reaps its children at once; ceph-common pulls python3 in anyway, this names the need).
debs=(openjdk-17-jre-headless qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-clients
  libnbd-bin restic rsync openssh-server openssh-client openssl systemd
  ceph-common ceph-mon ceph-osd ceph-mgr qemu-block-extra chromium python3)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "setup: need root to install ${missing[*]}" >&2; exit 1; }
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# npm packages, exactly as locked. Node 22 comes with them (the `node` package); it goes first
# on PATH so every later step, npm's own scripts included, runs on it.
stamp=node_modules/.lifeboat-lock
if [ ! -x node_modules/.bin/node ] || ! cmp -s package-lock.json "$stamp"; then
  say "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error >&2
  cp package-lock.json "$stamp"
fi
export PATH="$root/node_modules/.bin:$PATH"
node -e 'if (+process.versions.node.split(".")[0] < 22) { console.error("setup: Node 22 missing from node_modules"); process.exit(1) }'
