#!/usr/bin/env bash
# Offline checks of the deploy kit (deploy/): no terraform binary, no AWS account.
#
#     scripts/test-deploy.sh            # after `cargo build --workspace --bins` (for the images)
#
# 1. deploy/tests/check_deploy.py: every .tf parses (python-hcl2), parliament finds nothing in
#    the IAM policies of deploy/iam, no `*` resource on the actions that must be scoped, the
#    module renders the checked-in policies, docs/aws.md and the module's variables/outputs
#    agree, every checkov skip carries a reason.
# 2. checkov over deploy/terraform: no failed check.
# 3. every Dockerfile in deploy/docker builds on the local engine (FROM scratch, no registry)
#    and its image runs (images named weir-test-kit-*, removed afterwards).
#
# The PyPI tools are pinned and installed once into virtualenvs under
# ${WEIR_TEST_DEPLOY_VENV:-/tmp/weir-deploy-venv} (checkov apart: it pins its own HCL parser).
# Exit code: non-zero when any check failed.
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKOV_VERSION="3.3.30"
HCL2_VERSION="8.1.4"
PARLIAMENT_VERSION="1.6.4"
VENV="${WEIR_TEST_DEPLOY_VENV:-/tmp/weir-deploy-venv}"
PYTHON="${WEIR_TEST_PYTHON:-python3}"
TARGET="${CARGO_TARGET_DIR:-target}/debug"
# The interpreter copied into the Python flow image: the system's (small standard library).
IMAGE_PYTHON="${WEIR_TEST_IMAGE_PYTHON:-$( [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo python3 )}"

say() { echo "test-deploy: $*" >&2; }

source scripts/lib/venv.sh

mkdir -p "$VENV"
exec 9>"$VENV.lock"
flock 9
pinned_venv "$VENV/lint" "python-hcl2==$HCL2_VERSION" "parliament==$PARLIAMENT_VERSION" || exit 1
pinned_venv "$VENV/checkov" "checkov==$CHECKOV_VERSION" || exit 1
flock -u 9

status=0

say "1/3 HCL, IAM policies, least privilege, docs agreement"
WEIR_BIN="$TARGET/weir" "$VENV/lint/bin/python" deploy/tests/check_deploy.py || status=1

say "2/3 checkov over deploy/terraform"
"$VENV/checkov/bin/checkov" --directory deploy/terraform --framework terraform \
    --skip-download --compact --quiet || status=1

say "3/3 every Dockerfile builds and runs on the local engine"
if ! docker info >/dev/null 2>&1; then
    say "no Docker engine: the image builds are skipped"
    [ -z "${CI:-}" ] || status=1
else
    work="$(mktemp -d)"
    images=()
    cleanup() {
        for i in "${images[@]}"; do docker rmi -f "$i" >/dev/null 2>&1 || true; done
        rm -rf "$work"
    }
    trap cleanup EXIT
    # build NAME DOCKERFILE CONTEXT [--build-arg A=B]: builds weir-test-kit-NAME.
    build() {
        local name="weir-test-kit-$1:latest" file="$2" ctx="$3"; shift 3
        images+=("$name")
        docker build -q -f "$file" -t "$name" "$@" "$ctx" 2>&1 >/dev/null | grep -v -e DEPRECATED -e buildx -e '^ *$' >&2 || true
        docker image inspect "$name" >/dev/null 2>&1
    }
    # expect NAME TEXT CMD...: the image's output of CMD contains TEXT.
    expect() {
        local name="weir-test-kit-$1:latest" text="$2"; shift 2
        local out
        out="$(docker run --rm --name "weir-test-kit-run-$$" --network none "$name" "$@" 2>&1)" || true
        if ! grep -qF -- "$text" <<<"$out"; then
            say "FAIL $name $*: expected \"$text\" in: ${out:0:400}"
            return 1
        fi
        say "ok $name $*"
    }
    seen=0
    for f in deploy/docker/*.Dockerfile; do
        seen=$((seen + 1))
        case "$(basename "$f")" in
            weir.Dockerfile)
                deploy/docker/rootfs.sh "$work/weir" "$TARGET/weir" 2>/dev/null
                build weir "$f" "$work/weir" && expect weir "weir 0.1" --version || status=1 ;;
            flows-rust.Dockerfile)
                deploy/docker/rootfs.sh "$work/flows" "$TARGET/example-flows" 2>/dev/null
                build flows "$f" "$work/flows" && expect flows '"name": "etl"' example-flows describe || status=1 ;;
            flows-python.Dockerfile)
                deploy/docker/rootfs.sh "$work/py" --python "$IMAGE_PYTHON" \
                    --copy sdk/python/src/weir /opt/weir/lib/weir \
                    --copy examples/python/flows /opt/weir/app/flows 2>/dev/null
                build py "$f" "$work/py" --build-arg "$(cat "$work/py/python.env")" \
                    && expect py '"name": "etl"' || status=1 ;;
            *) say "FAIL $f: no build recipe in scripts/test-deploy.sh"; status=1 ;;
        esac
    done
    say "$seen Dockerfiles built"
fi
exit "$status"
