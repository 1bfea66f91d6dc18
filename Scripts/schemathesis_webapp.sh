#!/usr/bin/env bash
# Property-based API check of `fer-annotate serve`: schemathesis (PyPI, in a git-ignored venv) generates requests
# from /api/openapi.json against a server this script starts on 127.0.0.1 with a scratch data folder, and fails on
# any 5xx answer (check not_a_server_error). Bounded: --max-examples per operation (default 30).
#
#   Scripts/schemathesis_webapp.sh [MAX_EXAMPLES]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
EXAMPLES=${1:-30}
VENV=.venv-schemathesis
if [ ! -x "$VENV/bin/schemathesis" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q schemathesis
fi
WORK=$(mktemp -d)
.build/release/fer-annotate serve --port 0 --data "$WORK/data" > "$WORK/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do grep -q 'listening on' "$WORK/serve.log" && break; sleep 0.1; done
PORT=$(grep -o '127.0.0.1:[0-9]*' "$WORK/serve.log" | cut -d: -f2)
"$VENV/bin/schemathesis" run "http://127.0.0.1:$PORT/api/openapi.json" --checks not_a_server_error \
    --max-examples "$EXAMPLES"
