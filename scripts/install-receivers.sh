#!/usr/bin/env bash
# Install the real third-party StatsD/Graphite receivers used by the integration tests
# (tests/support/receivers.rs). Idempotent: a second run only checks and takes well under 1 s.
#
#   Debian packages: collectd-core netcat-openbsd socat graphite-carbon python3-whisper carbon-c-relay
#   npm:             statsd@0.9.0 (Etsy) into <repo>/target/receivers/statsd
#
# Needs root (apt-get) and node/npm on PATH. Everything the tests start binds to 127.0.0.1 only.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
statsd_dir="$repo/target/receivers/statsd"
statsd_version=0.9.0

# package -> a file or command that proves it is installed
declare -A probe=(
  [collectd-core]=collectd
  [netcat-openbsd]=nc.openbsd
  [socat]=socat
  [graphite-carbon]=carbon-cache
  [python3-whisper]=whisper-fetch
  [carbon-c-relay]=carbon-c-relay
  [prometheus-pushgateway]=prometheus-pushgateway
)
order=(collectd-core netcat-openbsd socat graphite-carbon python3-whisper carbon-c-relay prometheus-pushgateway)

missing=()
for pkg in "${order[@]}"; do
  if command -v "${probe[$pkg]}" >/dev/null 2>&1 \
    && dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    echo "found     $pkg ($(command -v "${probe[$pkg]}"))"
  else
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} > 0)); then
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "error: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  echo "installing ${missing[*]} (apt-get)"
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  for pkg in "${missing[@]}"; do
    command -v "${probe[$pkg]}" >/dev/null 2>&1 \
      || { echo "error: $pkg installed but ${probe[$pkg]} is not on PATH" >&2; exit 1; }
    echo "installed $pkg"
  done
fi

if [ -f "$statsd_dir/node_modules/statsd/stats.js" ]; then
  echo "found     statsd@$statsd_version ($statsd_dir)"
else
  command -v node >/dev/null 2>&1 || { echo "error: node is not installed (needed by Etsy statsd)" >&2; exit 1; }
  command -v npm >/dev/null 2>&1 || { echo "error: npm is not installed (needed to install Etsy statsd)" >&2; exit 1; }
  mkdir -p "$statsd_dir"
  npm install --prefix "$statsd_dir" --no-audit --no-fund --omit=optional --loglevel=error \
    "statsd@$statsd_version" >/dev/null
  [ -f "$statsd_dir/node_modules/statsd/stats.js" ] \
    || { echo "error: npm finished but $statsd_dir/node_modules/statsd/stats.js is missing" >&2; exit 1; }
  echo "installed statsd@$statsd_version ($statsd_dir)"
fi
