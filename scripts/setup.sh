#!/usr/bin/env bash
# Installs the Debian (bookworm) packages FastGPU needs to build and test. Idempotent: installs only
# what is missing. Run as root (or with sudo available).
set -euo pipefail
PKGS=(cmake ninja-build g++ pkg-config ccache
      libsqlite3-dev libcpp-httplib-dev nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libssl-dev libboost-dev
      libgtest-dev libgmock-dev libbenchmark-dev procps
      libpq-dev postgresql-15 iproute2
      python3-torch   # the multi-node all_reduce test (tests/integration/fleet/allreduce.py)
      podman catatonit runc busybox-static   # container jobs (podman run --init needs catatonit; tests/integration/container_test.cc builds its image from busybox)
      python3-pytest python3-venv python3-pip python3-setuptools python3-wheel openssl  # the Python SDK's tests (sdk/python)
      chromium fonts-dejavu-core   # the web console's browser tests (web/tests), driven by playwright-core from npm
      prometheus)  # /metrics acceptance: a real Prometheus scrapes the server; promtool checks metrics, alert rules and their tests
# Node.js and npm run the console's browser tests only (the product needs neither). Debian's packages
# unless a node and npm are already on the PATH (e.g. from another source: mixing the two breaks both).
command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || PKGS+=(npm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
