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

source "$(dirname "$0")/lib/venv.sh"
pinned_venv "$VENV" "schemathesis==$SCHEMATHESIS_VERSION" || exit 1
say "schemathesis $SCHEMATHESIS_VERSION ready in $VENV"

echo "export WEIR_TEST_SCHEMATHESIS=$VENV/bin/st"
