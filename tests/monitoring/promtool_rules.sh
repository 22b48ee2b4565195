#!/bin/sh
# Checks deploy/prometheus/alerts.yml and runs its unit tests (alerts_test.yml). Exit 77 (skipped) without promtool.
set -e
if ! command -v promtool >/dev/null 2>&1; then
  echo "skipped: promtool not installed (Debian package prometheus; scripts/setup.sh installs it)"
  exit 77
fi
cd "$1"
promtool check rules alerts.yml
promtool test rules alerts_test.yml
