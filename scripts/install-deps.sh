#!/usr/bin/env bash
# Installs every Debian package Quell needs to build, test and run. Idempotent: packages
# already present are not reinstalled, and apt is only consulted when something is missing.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git ccache
  # agent <-> server contract
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  # server: HTTP/WebSocket, JSON, storage, TLS
  libboost-dev nlohmann-json3-dev libsqlite3-dev libssl-dev openssl
  # both: logging, config, command line
  libspdlog-dev libfmt-dev libyaml-cpp-dev libcli11-dev
  # agent: kernel firewall; scanners (ClamAV engine, YARA) and the archive tools tests use
  libnftables-dev nftables
  libclamav-dev clamav libyara-dev yara p7zip-full zip
  # agent: investigation packages and collected files (AES-256 zip)
  libzip-dev
  # quell-sandbox (deep analysis): the seccomp policy its samples run under
  libseccomp-dev
  # benchmark peers only (clamd for clamdscan, fapolicyd); their services are never started
  # on this host by the install (see policy-rc.d below)
  clamav-daemon clamdscan fapolicyd
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev clang
  osslsigncode  # signs test PE files for the Authenticode (certificate indicator) tests
  python3 python3-pytest iproute2 iputils-ping netcat-openbsd socat curl util-linux procps
  python3-pexpect  # drives `quell live` through a pseudo-terminal in the e2e tests
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
# Packages such as fapolicyd and clamav-daemon would start their services from their
# install scripts; an execution-blocking daemon must never start on the host by accident.
# policy-rc.d (exit 101) tells invoke-rc.d to start nothing while we install.
POLICY=/usr/sbin/policy-rc.d
if [[ ! -e $POLICY ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee $POLICY > /dev/null
  $SUDO chmod +x $POLICY
  trap '$SUDO rm -f $POLICY' EXIT
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
