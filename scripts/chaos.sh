#!/usr/bin/env bash
# Weir's full fault suite: every scenario of crates/weir-cli/tests/faults at full size (the
# scale scenarios race 8 agents for 20 × 500 runs), one after the other. Needs root (network
# namespaces) and PostgreSQL 15's binaries; the clock-step scenario installs Debian's
# libfaketime when it is missing. Prints the table; writes target/faults/faults.md and
# faults.json (or $WEIR_FAULTS_OUT).
#
#     scripts/chaos.sh                               # everything
#     WEIR_FAULTS=partition_long,pg_restart scripts/chaos.sh   # some scenarios
set -euo pipefail
cd "$(dirname "$0")/.."
export WEIR_FAULTS="${WEIR_FAULTS:-full}"
FEATURES=(--features weir-cli/aws,weir-cli/ecs)
# Built with the tests, so the binaries and the suite share one feature resolution (see
# scripts/test.sh).
cargo build --workspace --all-targets "${FEATURES[@]}"
status=0
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run -p weir-cli "${FEATURES[@]}" --test faults --no-capture || status=$?
else
    cargo test -p weir-cli "${FEATURES[@]}" --test faults -- --nocapture || status=$?
fi
cat "${WEIR_FAULTS_OUT:-target/faults}/faults.md" 2>/dev/null || true
exit "$status"
