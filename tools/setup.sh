#!/usr/bin/env bash
# Installs what maillage needs to build (Debian packages, only those that
# are missing) and builds it in build/. Safe to run again.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

pkgs="build-essential cmake pkg-config libzmq3-dev libczmq-dev libmsgpack-dev
      libsqlite3-dev libsodium-dev libjansson-dev libcsv-dev libutf8proc-dev libmicrohttpd-dev
      clang libclang-rt-14-dev"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "Installation des paquets manquants :$missing"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
fi

cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
log="$top/build/build.log"
if ! cmake --build "$top/build" -j"$(nproc)" >"$log" 2>&1; then
    cat "$log"
    echo "La compilation a échoué (journal complet : $log)." >&2
    exit 1
fi
