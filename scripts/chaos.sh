#!/usr/bin/env bash
# Weir's full fault suite: every scenario of crates/weir-cli/tests/faults at full size (the
# scale scenarios race 8 agents for 20 × 500 runs), one after the other. Needs root (network
# namespaces) and PostgreSQL 15's binaries; the clock-step scenario installs Debian's
# libfaketime when it is missing. Prints the table; writes target/faults/faults.md and
# faults.json (or $WEIR_FAULTS_OUT).
#
#     scripts/chaos.sh                               # everything
#     WEIR_FAULTS=partition_long,pg_restart scripts/chaos.sh   # some scenarios
#     WEIR_FAULTS=scale_pg WEIR_FAULTS_SIZE=full scripts/chaos.sh   # one scale race at full size
set -euo pipefail
cd "$(dirname "$0")/.."
export WEIR_FAULTS="${WEIR_FAULTS:-full}"
FEATURES=(--features weir-cli/aws,weir-cli/ecs)
# Built with the tests, so the binaries and the suite share one feature resolution (see
# scripts/test.sh); the suite is picked from the workspace's tests by filter, never with
# `-p weir-cli`, which resolves features anew and recompiles the dependencies.
cargo build --workspace --all-targets "${FEATURES[@]}"
status=0
started=$(date +%s)
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace "${FEATURES[@]}" -E 'binary(faults)' --no-capture || status=$?
else
    cargo test --workspace "${FEATURES[@]}" --test faults -- --nocapture || status=$?
fi
echo "chaos: the fault suite took $(( $(date +%s) - started )) s" >&2
cat "${WEIR_FAULTS_OUT:-target/faults}/faults.md" 2>/dev/null || true
exit "$status"
