#!/usr/bin/env bash
# Installs (once) the IAM policy linter `parliament` from PyPI into a virtualenv and prints
# the environment Weir's policy tests read:
#
#     eval "$(scripts/test-iam.sh)"
#     cargo test -p weir-launcher-ecs --test iam_policies
#
# The virtualenv lives in ${WEIR_TEST_IAM_VENV:-/tmp/weir-iam-venv} and is reused while it
# holds the pinned version. Everything but the final export line goes to stderr.
set -euo pipefail

PARLIAMENT_VERSION="1.6.4"
VENV="${WEIR_TEST_IAM_VENV:-/tmp/weir-iam-venv}"
PYTHON="${WEIR_TEST_PYTHON:-python3}"

say() { echo "test-iam: $*" >&2; }
die() { say "error: $*"; exit 1; }

mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9

if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('parliament') != '$PARLIAMENT_VERSION')" 2>/dev/null \
    || [ ! -x "$VENV/bin/parliament" ]; then
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set WEIR_TEST_PYTHON to a Python 3.9+)"
    if [ ! -x "$VENV/bin/pip" ]; then
        say "creating a virtualenv in $VENV"
        "$PYTHON" -m venv "$VENV" >&2 || die "cannot create a virtualenv in $VENV (install python3-venv)"
    fi
    say "installing parliament==$PARLIAMENT_VERSION from PyPI (once)"
    "$VENV/bin/pip" install --disable-pip-version-check -q "parliament==$PARLIAMENT_VERSION" >&2 \
        || die "pip install parliament==$PARLIAMENT_VERSION failed"
fi
say "parliament $PARLIAMENT_VERSION ready in $VENV"

echo "export WEIR_TEST_PARLIAMENT=$VENV/bin/parliament"
