#!/usr/bin/env bash
# The programs the observability tests run (promtool, Prometheus, headless Chromium): Debian packages.
# Installs them when missing and this is root with apt-get; otherwise says how, and fails.
set -euo pipefail
missing=()
for program in promtool prometheus chromium; do
  command -v "$program" >/dev/null 2>&1 || missing+=("$program")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing prometheus and chromium (missing: ${missing[*]})"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y prometheus chromium
else
  echo "Missing ${missing[*]}: install with apt-get install prometheus chromium (as root), then rerun." >&2
  exit 1
fi
