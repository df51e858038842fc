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

source "$(dirname "$0")/lib/venv.sh"
pinned_venv "$VENV" "parliament==$PARLIAMENT_VERSION" || exit 1
say "parliament $PARLIAMENT_VERSION ready in $VENV"

echo "export WEIR_TEST_PARLIAMENT=$VENV/bin/parliament"
