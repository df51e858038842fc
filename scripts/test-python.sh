#!/usr/bin/env bash
# The Python SDK's tests (sdk/python/tests): pytest against a real `weir server` and agent that
# the fixtures start from the binaries in ${WEIR_BIN_DIR:-$CARGO_TARGET_DIR/debug} (build them
# first: `cargo build --workspace --bins`), and moto's S3 at $WEIR_TEST_AWS_ENDPOINT for the
# s3_download example (scripts/test-moto.sh starts it).
#
#     scripts/test-python.sh            # every Python test
#     scripts/test-python.sh -k cancel  # extra arguments go to pytest
#
# pytest, boto3 and wheel (to build the SDK's wheel in a test) come from PyPI into a virtualenv in ${WEIR_TEST_PY_VENV:-/tmp/weir-py-venv}
# (created once, reused while it holds the pinned versions); the SDK itself is used from the
# checkout (PYTHONPATH), so the tests always run the code in this tree. pytest's exit code is
# this script's: any failure (or no test collected) fails CI.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTEST_VERSION="8.3.4"
BOTO3_VERSION="1.35.99"
WHEEL_VERSION="0.45.1"
VENV="${WEIR_TEST_PY_VENV:-/tmp/weir-py-venv}"
PYTHON="${WEIR_TEST_PYTHON:-python3}"

say() { echo "test-python: $*" >&2; }

mkdir -p "$(dirname "$VENV")"
exec 8>"$VENV.lock"
flock 8
source scripts/lib/venv.sh
pinned_venv "$VENV" "pytest==$PYTEST_VERSION" "boto3==$BOTO3_VERSION" "wheel==$WHEEL_VERSION" || exit 1
exec 8>&-

# moto's S3 for the s3_download example (already started by scripts/test.sh; reused if so).
if [ -z "${WEIR_TEST_AWS_ENDPOINT:-}" ]; then
    eval "$(scripts/test-moto.sh)"
fi
export WEIR_TEST_AWS_ENDPOINT

if [ -z "${WEIR_BIN_DIR:-}" ]; then
    WEIR_BIN_DIR="${CARGO_TARGET_DIR:-$PWD/target}/debug"
fi
export WEIR_BIN_DIR
export PYTHONPATH="$PWD/sdk/python/src${PYTHONPATH:+:$PYTHONPATH}"
say "weir binaries from $WEIR_BIN_DIR"
exec "$VENV/bin/python" -m pytest sdk/python/tests -q -rfE -p no:cacheprovider "$@"
