#!/usr/bin/env bash
# Weir's whole test suite, from a fresh clone: starts what the tests need (a throwaway
# PostgreSQL cluster), then runs every test of the workspace against real parts.
#
#     scripts/test.sh            # everything
#     scripts/test.sh -p weir-store   # extra arguments go to the test runner
set -euo pipefail
cd "$(dirname "$0")/.."

# A real PostgreSQL server for the store's and server's conformance tests.
eval "$(scripts/test-postgres.sh)"
export WEIR_TEST_POSTGRES_URL

# Tests need the binaries they drive (weir, example-flows) built first.
cargo build --workspace --bins

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast "$@"
else
    cargo test --workspace --no-fail-fast "$@"
fi
