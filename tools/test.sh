#!/usr/bin/env bash
# The whole test suite: build and run every test, then build again with
# AddressSanitizer + UndefinedBehaviorSanitizer and run every test again.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tools/setup.sh"
jobs=$(nproc)

# The dashboard's browser tests (tests/browser) need Debian's chromium and
# playwright-core from npm (pinned in package-lock.json). Without them the
# test fails with a message; it never passes silently.
if ! command -v chromium >/dev/null; then
    echo "Installation du paquet manquant : chromium (tests du tableau de bord)"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
if ! command -v npm >/dev/null; then
    echo "Installation des paquets manquants : nodejs npm (tests du tableau de bord)"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
fi
(cd "$top/tests/browser" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

echo "== Tests (build normal)"
ctest --test-dir "$top/build" --output-on-failure -j"$jobs"

echo "== Tests sous AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S "$top" -B "$top/build-asan" -DCMAKE_BUILD_TYPE=Debug -DMG_SANITIZE=ON >/dev/null
if ! cmake --build "$top/build-asan" -j"$jobs" >"$top/build-asan/build.log" 2>&1; then
    cat "$top/build-asan/build.log"
    exit 1
fi
# MG_FAULT_SCALE: the fault tests (label fault) use a tenth of their
# record counts here; the sanitizers make every write several times slower.
MG_FAULT_SCALE=10 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$top/build-asan" --output-on-failure -j"$jobs"

# Fuzzing (tools/fuzz.sh): every libFuzzer target for ${MG_FUZZ_SECONDS:-60} s,
# when clang is there (tools/setup.sh installs it).
if command -v clang >/dev/null; then
    "$top/tools/fuzz.sh"
else
    echo "== Fuzzing ignoré : clang est introuvable (tools/setup.sh l'installe)"
fi
