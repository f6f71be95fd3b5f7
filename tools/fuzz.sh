#!/usr/bin/env bash
# Fuzzing (docs/security.md): builds the libFuzzer targets of tests/fuzz
# with clang in build-fuzz, then runs each for MG_FUZZ_SECONDS seconds
# (default 60) from its committed seed corpus. Any crash, sanitizer
# report, leak or slow input fails the script; the input that caused it
# is kept in build-fuzz/fuzz-artifacts/<target>/. One summary line per
# target. MG_FUZZ_TARGETS="record msg" runs only those.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
seconds=${MG_FUZZ_SECONDS:-60}
targets=${MG_FUZZ_TARGETS:-"record msg recon import_csv import_json hours"}
build="$top/build-fuzz"
jobs=$(nproc)

if ! command -v clang >/dev/null; then
    echo "clang est introuvable : installez clang et libclang-rt-14-dev (tools/setup.sh)." >&2
    exit 1
fi

echo "== Fuzzing (libFuzzer + ASan + UBSan, ${seconds} s par cible)"
mkdir -p "$build"
log="$build/build.log"
if ! { cmake -S "$top" -B "$build" -DCMAKE_C_COMPILER=clang \
           -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMG_FUZZ=ON \
       && cmake --build "$build" --target mg_fuzz -j"$jobs"; } >"$log" 2>&1; then
    cat "$log"
    echo "La compilation des cibles de fuzzing a échoué (journal : $log)." >&2
    exit 1
fi

# Longest input per target: just over the limit each decoder enforces, so
# the refusal at the limit is reachable, and no more (long inputs are
# slow to mutate). record: MG_RECORD_MAX (65,536); msg: one RECORDS item
# over MG_RECORD_MAX; hours: MG_HOURS_TEXT_MAX (1,024); recon: a dozen
# messages at the smallest frame limit (2,048); imports: real files of a
# few lieux.
max_len() {
    case "$1" in
        record) echo 65600 ;;
        msg) echo 70000 ;;
        recon) echo 16384 ;;
        hours) echo 1100 ;;
        *) echo 65536 ;;
    esac
}

failed=0
for t in $targets; do
    bin="$build/tests/fuzz/fuzz_$t"
    if [ ! -x "$bin" ]; then
        echo "fuzz_$t: non construite (voir $log), ignorée"
        continue
    fi
    # New inputs go to a scratch corpus; the committed seeds are read only.
    work="$build/fuzz-corpus/$t"
    art="$build/fuzz-artifacts/$t"
    rm -rf "$work"
    mkdir -p "$work" "$art"
    out="$build/fuzz-$t.log"
    seeds=$(find "$top/tests/fuzz/corpus/$t" -type f | wc -l)
    rc=0
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$bin" "$work" "$top/tests/fuzz/corpus/$t" \
            -max_total_time="$seconds" -max_len="$(max_len "$t")" \
            -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
            -artifact_prefix="$art/" >"$out" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)
    peak=$(sed -n 's/^stat::peak_rss_mb: *//p' "$out" | tail -1)
    found=$(find "$work" -type f | wc -l)
    if [ "$rc" -ne 0 ]; then
        failed=1
        echo "fuzz_$t: ÉCHEC (code $rc) après ${execs:-?} exécutions ; entrée : $(ls "$art" | head -1) ; journal : $out"
        grep -m 20 -E 'ERROR|invariant broken|runtime error|SUMMARY|Test unit written' "$out" || true
    else
        echo "fuzz_$t: ${execs:-?} exécutions en ${seconds} s, ${seeds} graines + ${found} entrées nouvelles, mémoire max ${peak:-?} Mo, aucun plantage"
    fi
done
exit "$failed"
