#!/usr/bin/env bash
# Weir's whole test suite, from a fresh clone: starts what the tests need (a throwaway
# PostgreSQL cluster, a local AWS-compatible endpoint), then runs every test of the
# workspace against real parts, with the optional `aws` feature of `weir` turned on.
#
#     scripts/test.sh            # everything
#     scripts/test.sh -p weir-store   # extra arguments go to the test runner
set -euo pipefail
cd "$(dirname "$0")/.."

# Headless Chromium and chromedriver for the browser test (crates/weir-cli/tests/browser.rs),
# installed from Debian's packages only when missing (a fresh CI machine).
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver
fi

# A real PostgreSQL server for the store's and server's conformance tests.
eval "$(scripts/test-postgres.sh)"
export WEIR_TEST_POSTGRES_URL

# A local AWS-compatible endpoint (moto's server) for the SSM and Secrets Manager tests,
# with the dummy credentials and region it accepts. Real AWS settings of the caller are
# masked, so no test can reach a real account.
eval "$(scripts/test-moto.sh)"
export WEIR_TEST_AWS_ENDPOINT WEIR_TEST_MOTO_SERVER
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
    AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE

# The IAM policy linter for the ECS policies in deploy/iam (crates/weir-launcher-ecs/tests).
eval "$(scripts/test-iam.sh)"
export WEIR_TEST_PARLIAMENT

# schemathesis, the schema-driven fuzzer of the API test (crates/weir-cli/tests/e2e_fuzz_api.rs).
eval "$(scripts/test-schemathesis.sh)"
export WEIR_TEST_SCHEMATHESIS

# Every feature CI covers: the AWS secret stores are behind `weir-cli/aws`, the ECS launcher
# behind `weir-cli/ecs`.
FEATURES=(--features weir-cli/aws,weir-cli/ecs)

# The Docker tests build their images (weir-test-*) from the binaries under test themselves;
# remove them when the suite ends.
trap 'docker rmi -f weir-test-weir:dev weir-test-weir-example-flows:dev >/dev/null 2>&1 || true' EXIT

# The workspace run includes the trimmed fault suite (crates/weir-cli/tests/faults, root and
# network namespaces); scripts/chaos.sh runs the full one.

# Tests need the binaries they drive (weir, example-flows) built first. They are built with
# the tests (`--all-targets`) so one feature resolution, dev-dependencies included, serves
# both: built apart, `--bins` alone resolves dependency features differently and every
# shared dependency (the AWS SDKs, sqlx, axum, …) is compiled twice on a cold cache.
cargo build --workspace --all-targets "${FEATURES[@]}"

status=0

# The lints every change lands with: clippy, warnings as errors (functions over 80 lines
# among them: clippy.toml, Cargo.toml's [workspace.lints.clippy]), and rustfmt.
cargo clippy --workspace --all-targets "${FEATURES[@]}" -- -D warnings || status=$?
cargo fmt --all --check || status=$?

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace "${FEATURES[@]}" --no-fail-fast "$@" || status=$?
else
    cargo test --workspace "${FEATURES[@]}" --no-fail-fast "$@" || status=$?
fi

# The Python SDK's pytest suite, against the binaries just built (its own venv; pytest's exit
# code fails the run).
scripts/test-python.sh || status=$?

# The deploy kit, offline: Terraform parses and passes checkov, the IAM policies pass parliament
# and the least-privilege asserts, docs/aws.md agrees with the module and the CLI, every
# Dockerfile builds on the local engine (PyPI tools in their own venvs, installed once).
scripts/test-deploy.sh || status=$?
exit "$status"
