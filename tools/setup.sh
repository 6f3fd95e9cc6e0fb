#!/usr/bin/env bash
# Installs the Debian packages Playhead builds and tests with. A no-op when they are all present.
set -euo pipefail

BUILD_PACKAGES=(cmake make g++ clang ccache libasio-dev libssl-dev node-llhttp catch2 libbenchmark-dev nlohmann-json3-dev)
# Real third-party peers and tools the test suite drives on loopback, and the sanitizer/fuzzer runtime for clang.
TEST_PACKAGES=(python3 python3-libtorrent opentracker mktorrent ffmpeg curl openssl libclang-rt-14-dev chromium)

missing=()
for p in "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}" ${EXTRA_PACKAGES:-}; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "setup: installing ${missing[*]}"
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
