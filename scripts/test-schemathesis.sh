#!/usr/bin/env bash
# Installs schemathesis (the schema-driven API fuzzer of crates/weir-cli/tests/e2e_fuzz_api.rs)
# from PyPI into a virtualenv and prints the environment the test reads:
#
#     eval "$(scripts/test-schemathesis.sh)"
#     cargo test -p weir-cli --test e2e_fuzz_api
#
# The virtualenv is ${WEIR_TEST_SCHEMATHESIS_VENV:-/tmp/weir-schemathesis-venv}, created once
# and reused while it holds the pinned version. Everything but the final export line goes to
# stderr, so `eval` sees only the export.
set -euo pipefail

SCHEMATHESIS_VERSION="4.32.5"
VENV="${WEIR_TEST_SCHEMATHESIS_VENV:-/tmp/weir-schemathesis-venv}"
PYTHON="${WEIR_TEST_PYTHON:-python3}"

say() { echo "test-schemathesis: $*" >&2; }
die() { say "error: $*"; exit 1; }

mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9

if ! "$VENV/bin/python" -c "import schemathesis, sys; from importlib.metadata import version; sys.exit(version('schemathesis') != '$SCHEMATHESIS_VERSION')" 2>/dev/null \
    || [ ! -x "$VENV/bin/st" ]; then
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set WEIR_TEST_PYTHON to a Python 3.10+)"
    if [ ! -x "$VENV/bin/pip" ]; then
        say "creating a virtualenv in $VENV"
        if ! "$PYTHON" -m venv "$VENV" >&2; then
            # Debian's python3 needs its venv package for `-m venv`.
            if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
                say "installing python3-venv"
                apt-get install -y -q python3-venv >&2 \
                    || { apt-get update -q >&2 && apt-get install -y -q python3-venv >&2; } \
                    || die "cannot install python3-venv"
                rm -rf "$VENV/bin" "$VENV/lib" "$VENV/pyvenv.cfg"
                "$PYTHON" -m venv "$VENV" >&2 || die "cannot create a virtualenv in $VENV"
            else
                die "cannot create a virtualenv in $VENV (install python3-venv)"
            fi
        fi
    fi
    say "installing schemathesis==$SCHEMATHESIS_VERSION from PyPI (once)"
    "$VENV/bin/pip" install --disable-pip-version-check -q "schemathesis==$SCHEMATHESIS_VERSION" >&2 \
        || die "pip install schemathesis==$SCHEMATHESIS_VERSION failed"
fi
say "schemathesis $SCHEMATHESIS_VERSION ready in $VENV"

echo "export WEIR_TEST_SCHEMATHESIS=$VENV/bin/st"
