#!/usr/bin/env bash
# Starts (or reuses) a local AWS-compatible endpoint (moto's server) for Weir's AWS tests
# and prints the environment the tests read:
#
#     eval "$(scripts/test-moto.sh)"
#     cargo test -p weir-secrets-aws
#
# moto is installed from PyPI into a virtualenv in ${WEIR_TEST_MOTO_VENV:-/tmp/weir-moto-venv}
# (created once, reused while it holds the pinned version) and listens on 127.0.0.1 port
# ${WEIR_TEST_MOTO_PORT:-55500}; its log and pid file live in the virtualenv. Running the
# script again reuses a server that answers; `scripts/test-moto.sh stop` stops it. It keeps
# everything in memory: a restart forgets every parameter and secret (tests create their own).
# Everything but the final export line goes to stderr, so `eval` sees only the export.
set -euo pipefail

MOTO_VERSION="5.2.5"
VENV="${WEIR_TEST_MOTO_VENV:-/tmp/weir-moto-venv}"
PORT="${WEIR_TEST_MOTO_PORT:-55500}"
PYTHON="${WEIR_TEST_PYTHON:-python3}"
URL="http://127.0.0.1:${PORT}"
LOG="$VENV/moto_server.log"
PIDFILE="$VENV/moto_server.pid"

say() { echo "test-moto: $*" >&2; }
die() { say "error: $*"; exit 1; }

# Whether a moto server answers on the port (its dashboard is at /moto-api/).
answering() {
    "$VENV/bin/python" - "$URL" <<'EOF' 2>/dev/null
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=2) as r:
        sys.exit(0 if r.status == 200 and b"moto" in r.read().lower() else 1)
except Exception:
    sys.exit(1)
EOF
}

stop() {
    if [ -f "$PIDFILE" ]; then
        pid="$(cat "$PIDFILE")"
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
            && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q moto_server; then
            say "stopping moto_server (pid $pid)"
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -f "$PIDFILE"
    fi
}

mkdir -p "$VENV"
# One run at a time: a second concurrent run waits, then finds the server answering.
exec 9>"$VENV.lock"
flock 9

if [ "${1:-}" = stop ]; then
    stop
    exit 0
fi

# The virtualenv with the pinned moto.
source "$(dirname "$0")/lib/venv.sh"
pinned_venv "$VENV" "moto[server]==$MOTO_VERSION" || exit 1

if answering; then
    say "reusing the moto server already answering on $URL"
else
    stop
    say "starting moto_server $MOTO_VERSION on $URL (log: $LOG)"
    # Detached (own session, no inherited terminal or lock), so it outlives this script and
    # `$(…)` around the script does not wait for it.
    setsid "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" </dev/null >"$LOG" 2>&1 9>&- &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 150); do answering && break; sleep 0.2; done
    answering || { tail -n 30 "$LOG" >&2 || true; die "moto_server did not answer on $URL (log: $LOG)"; }
fi

# moto loads SSM's built-in public parameters on the first SSM call (a second or more), and
# Secrets Manager on its first: pay for both here, not inside a test's timeout.
"$VENV/bin/python" - "$URL" <<'EOF' >&2 || die "warming up moto's SSM and Secrets Manager failed"
import sys, boto3
kw = dict(endpoint_url=sys.argv[1], region_name="us-east-1",
          aws_access_key_id="test", aws_secret_access_key="test")
ssm = boto3.client("ssm", **kw)
try:
    ssm.get_parameter(Name="/weir/test-moto/warm-up")
except ssm.exceptions.ParameterNotFound:
    pass
sm = boto3.client("secretsmanager", **kw)
try:
    sm.get_secret_value(SecretId="weir/test-moto/warm-up")
except sm.exceptions.ResourceNotFoundException:
    pass
EOF
say "moto $MOTO_VERSION ready on $URL"

# The server program too: the S3 access-denied test starts its own instance with
# authentication on (crates/weir-results/tests/moto.rs).
echo "export WEIR_TEST_AWS_ENDPOINT=$URL WEIR_TEST_MOTO_SERVER=$VENV/bin/moto_server"
