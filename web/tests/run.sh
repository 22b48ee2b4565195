#!/usr/bin/env bash
# Runs the console's browser tests (console.test.mjs) against FASTGPU_BIN. Installs the npm packages from
# package-lock.json when node_modules is missing. Exit 77 (skipped) only when node, npm or chromium is absent.
set -euo pipefail
cd "${0%/*}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "skipped: $tool is not installed (bash scripts/setup.sh installs it)"
    exit 77
  fi
done
if [ ! -x "$CHROMIUM" ]; then
  echo "skipped: no chromium at $CHROMIUM (bash scripts/setup.sh installs Debian's chromium)"
  exit 77
fi
if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/axe-core ]; then
  # Playwright never downloads a browser here: playwright-core has no install step; Debian's chromium is used.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
fi
export CHROMIUM
exec node --test console.test.mjs
