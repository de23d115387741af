#!/usr/bin/env bash
# Installs the Lifeboat runner on a KVM host as a systemd service. Run as root from the project
# checkout (which must have node_modules installed). Idempotent: running it again updates the
# unit and keeps /etc/lifeboat/runner.env. Prints every step it takes.
#   sudo runner/install.sh [--no-start] [--root DIR]
# --root DIR installs into DIR as if it were / (a scratch root: the tests, an image being built);
# the unit still names the final paths, and the host's systemd is left alone.
set -euo pipefail

ROOT="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
START=1
DEST=""

say() { printf 'lifeboat-runner install: %s\n' "$*"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-start) START=0; shift ;;
    --root)
      [[ $# -ge 2 && "$2" == /* ]] || { say "--root needs an absolute folder"; exit 2; }
      DEST="${2%/}"; shift 2 ;;
    *) say "unknown argument $1 (usage: install.sh [--no-start] [--root DIR])"; exit 2 ;;
  esac
done
UNIT="$DEST/etc/systemd/system/lifeboat-runner.service"
ENV_FILE="$DEST/etc/lifeboat/runner.env"

[[ $EUID -eq 0 ]] || { say "must run as root"; exit 1; }
[[ -x "$ROOT/node_modules/.bin/node" ]] || { say "$ROOT/node_modules/.bin/node missing: run npm install in $ROOT first"; exit 1; }
for tool in virsh qemu-img; do
  command -v "$tool" >/dev/null || say "warning: $tool not found (install qemu-utils and libvirt-clients)"
done

install -d -m 0755 "$DEST/var/lib/lifeboat"
install -d -m 0711 "$DEST/var/lib/lifeboat/runner"
say "created $DEST/var/lib/lifeboat (0755) and $DEST/var/lib/lifeboat/runner (0711: QEMU reaches the snapshot overlays)"

install -d -m 0755 "$DEST/etc/systemd/system"
install -d -m 0700 "$DEST/etc/lifeboat"
if [[ ! -e "$ENV_FILE" ]]; then
  umask 077
  cat >"$ENV_FILE" <<'ENV'
# Lifeboat runner settings (this file is 0600). The runner takes no API token: at its first
# start it registers with a one-time enrollment token (`lifeboat host enroll NAME`, run by an
# admin) and keeps its own host credential in /var/lib/lifeboat/runner/identity.json.
# LIFEBOAT_ENDPOINT=https://xxxx.execute-api.eu-west-1.amazonaws.com
# LIFEBOAT_ENROLL_TOKEN_FILE=/etc/lifeboat/enroll-token   (0600; only needed until the first start)
# LIFEBOAT_RUNNER_NAME=   (default: the host name; the NAME given to `lifeboat host enroll`)
# In AWS with IAM Roles Anywhere instead of an enrollment token (no token at all):
# LIFEBOAT_API_AUTH=iam
# LIFEBOAT_HOST_ID=   (the host id, its certificate's CN)
# LIFEBOAT_RESTORE_ROOTS=/var/lib/lifeboat/restores   (colon-separated: where users' restores may write)
# LIFEBOAT_RESTORE_POOLS=   (comma-separated Ceph pools restores may create rbd images in; default none)
# LIFEBOAT_RUNNER_MAX_TASKS=2
# LIFEBOAT_LIBVIRT_URI=qemu:///system
# AWS_REGION=eu-west-1
# TABLE_PROGRESS=   (the stack's progress table: this host's task progress)
# LIFEBOAT_SSH_CONFIG=/etc/lifeboat/ssh_config
ENV
  say "wrote $ENV_FILE (0600): fill in the endpoint, the enrollment token file and AWS settings"
else
  say "kept existing $ENV_FILE"
fi

sed "s#@ROOT@#$ROOT#g" "$ROOT/runner/lifeboat-runner.service" >"$UNIT"
chmod 0644 "$UNIT"
say "installed $UNIT (runs $ROOT/runner/main.ts)"

if [[ -n "$DEST" ]]; then
  say "installed into $DEST: the host's systemd was left alone"
elif [[ -d /run/systemd/system ]]; then
  systemctl daemon-reload
  systemctl enable lifeboat-runner.service
  say "enabled lifeboat-runner.service"
  if [[ $START -eq 1 ]]; then
    systemctl restart lifeboat-runner.service
    say "started lifeboat-runner.service (journalctl -u lifeboat-runner -f to follow)"
  fi
else
  say "systemd is not running here: start the runner by hand with"
  say "  $ROOT/node_modules/.bin/node --import tsx $ROOT/runner/main.ts"
fi
