#!/usr/bin/env bash
# Installs Debian packages that are not installed yet, e.g.
#   bash scripts/ensure-apt.sh kcat prometheus
# Does nothing (and touches no network) when every package is already installed,
# so it is cheap to call before every test run. Developers' machines and CI are
# fresh Debian images: whatever the tests need from apt must come through here.
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 PACKAGE..." >&2
  exit 2
fi

is_installed() {
  # `dpkg -s` also succeeds for removed-but-not-purged packages; the status line tells.
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing_pkgs() {
  local p
  for p in "$@"; do
    is_installed "$p" || printf '%s\n' "$p"
  done
}

mapfile -t missing < <(missing_pkgs "$@")
[ "${#missing[@]}" -eq 0 ] && exit 0

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); else
    echo "ensure-apt: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
# Other scripts may run this at the same time (e.g. parallel test setup); apt's
# own locks make the loser fail, so serialise here and let apt wait as well.
APT_OPTS=(-o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
lock=/tmp/palisade-ensure-apt.lock
exec 9>"$lock"
flock -w 600 9 || { echo "ensure-apt: timed out waiting for $lock" >&2; exit 1; }

# Another holder of the lock may have installed them meanwhile.
mapfile -t missing < <(missing_pkgs "${missing[@]}")
[ "${#missing[@]}" -eq 0 ] && exit 0

echo "ensure-apt: installing ${missing[*]}" >&2

lists_fresh() {
  # Package lists from a fresh image can be absent or stale (404 on install):
  # refresh unless they were updated in the last 6 hours.
  local newest
  newest=$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -360 -print -quit 2>/dev/null || true)
  [ -n "$newest" ]
}

updated=0
if ! lists_fresh; then
  "${SUDO[@]}" apt-get "${APT_OPTS[@]}" update -qq >&2
  updated=1
fi

if ! "${SUDO[@]}" apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends "${missing[@]}" >&2; then
  if [ "$updated" -eq 1 ]; then exit 1; fi
  # Lists looked fresh but the mirror moved on: update once and retry.
  "${SUDO[@]}" apt-get "${APT_OPTS[@]}" update -qq >&2
  "${SUDO[@]}" apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

mapfile -t still < <(missing_pkgs "${missing[@]}")
if [ "${#still[@]}" -ne 0 ]; then
  echo "ensure-apt: still not installed: ${still[*]}" >&2
  exit 1
fi
