#!/usr/bin/env bash
# make bench: builds and runs the benchmark suite, which prints one line per
# figure and writes docs/benchmarks.md (about 5 minutes on 2 cores). Extra
# arguments go to mg_bench (--nodes N, --records R, --no-serf, --help...).
set -euo pipefail; top=$(cd "$(dirname "$0")/.." && pwd); cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && cmake --build "$top/build" -j2 --target mg_bench maillage >/dev/null && exec "$top/build/tools/mg_bench" --out "$top/docs/benchmarks.md" "$@"
