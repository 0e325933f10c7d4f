#!/usr/bin/env bash
# Ensure the system packages the tests need (Debian/Ubuntu): PostgreSQL server binaries (the tests
# run their own initdb), Chromium (browser tests), Node.js + npm and promtool (from the `prometheus`
# package: it checks deploy/prometheus/alerts.yml) and espeak-ng (the voice tests speak their voice
# notes with it). Does nothing when all are there.
# As root it installs what is missing; otherwise it prints the command to run and fails.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
have_postgres() { have initdb || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; }

missing=()
have_postgres || missing+=(postgresql)
have chromium || missing+=(chromium)
have npm || missing+=(nodejs npm)
have promtool || missing+=(prometheus)
have espeak-ng || missing+=(espeak-ng)

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! have apt-get; then
  echo "system-deps: the tests need these packages: ${missing[*]}" >&2
  echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

if [[ " ${missing[*]} " == *" postgresql "* ]]; then
  # The tests start their own server: keep the package from creating (and starting) a 'main' cluster.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/channel-bridge-tests.conf
fi

echo "system-deps: installing ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1; then
  # Only its promtool is wanted: the package's Prometheus server need not run on this machine.
  systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
