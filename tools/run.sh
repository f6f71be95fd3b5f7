#!/usr/bin/env bash
# The main job: set up and build, then run a maillage node on its embedded
# SQLite store in ./maillage-data (or $MAILLAGE_DIR). A new node gets an
# identity and, while its store holds no offer, the bundled Charente data.
# Extra arguments go to `maillage node` (e.g. --peer INVITATION). The
# dashboard is served on http://127.0.0.1:$MAILLAGE_HTTP_PORT/ (8080 by
# default; `maillage node` prints the address).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tools/setup.sh"

bin="$top/build/tools/maillage"
export MAILLAGE_DIR="${MAILLAGE_DIR:-$top/maillage-data}"
if [ ! -f "$MAILLAGE_DIR/identity.key" ]; then
    "$bin" init --name "${MAILLAGE_NAME:-Ma structure de médiation numérique}"
fi
if ! "$bin" status --json | grep -q '"offer"'; then
    "$bin" import "$top/tests/data/charente-2023-07.json"
fi
"$bin" status
exec "$bin" node --http "127.0.0.1:${MAILLAGE_HTTP_PORT:-8080}" \
    --communes "$top/tests/data/charente.csv" "$@"
