#!/usr/bin/env bash
# Installs every Debian package Quell needs to build, test and run. Idempotent: packages
# already present are not reinstalled, and apt is only consulted when something is missing.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  # agent <-> server contract
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  # server: HTTP/WebSocket, JSON, storage, TLS
  libboost-dev nlohmann-json3-dev libsqlite3-dev libssl-dev openssl
  # both: logging, config, command line
  libspdlog-dev libfmt-dev libyaml-cpp-dev libcli11-dev
  # agent: kernel firewall
  libnftables-dev nftables
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev clang
  python3 python3-pytest iproute2 iputils-ping netcat-openbsd socat curl util-linux procps
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  SUDO=sudo
else
  SUDO=
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
