#!/usr/bin/env bash
# Builds Weir's images without a registry or base image, FROM scratch:
#
#     scripts/build-images.sh                 # weir:dev and weir-example-flows:dev, static binaries
#     scripts/build-images.sh --from DIR      # take the binaries already built in DIR (e.g.
#                                             # target/debug) with the libraries `ldd` lists
#     scripts/build-images.sh --tag T         # tag T instead of dev
#     scripts/build-images.sh --prefix P      # name the images P-weir and P-weir-example-flows
#
# The static build (`-C target-feature=+crt-static` on the gnu target) goes to its own target
# directory (target/static), so it does not invalidate the ordinary build cache. `--from` is
# what the test suite uses: no second build, the same binaries the tests run. Idempotent:
# building again with the same binaries leaves the images as they are (Docker's cache).
set -euo pipefail
cd "$(dirname "$0")/.."

FROM_DIR=""; TAG="dev"; PREFIX=""
while [ $# -gt 0 ]; do
    case "$1" in
        --from) FROM_DIR="$2"; shift 2 ;;
        --tag) TAG="$2"; shift 2 ;;
        --prefix) PREFIX="$2-"; shift 2 ;;
        *) echo "build-images: unknown argument $1" >&2; exit 2 ;;
    esac
done
command -v docker >/dev/null || { echo "build-images: docker is not installed" >&2; exit 1; }

if [ -z "$FROM_DIR" ]; then
    TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --target "$TRIPLE" \
        --target-dir target/static -p weir-cli -p example-flows >&2
    FROM_DIR="target/static/$TRIPLE/release"
fi
for bin in weir example-flows; do
    [ -x "$FROM_DIR/$bin" ] || { echo "build-images: $FROM_DIR/$bin is missing: build it first" >&2; exit 1; }
done

WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT

# The contexts come from deploy/docker/rootfs.sh and the Dockerfiles beside it, the same ones
# a registry build uses: programs in /usr/local/bin, their libraries, CA certificates.
deploy/docker/rootfs.sh "$WORK/weir" "$FROM_DIR/weir"
docker build -q -t "${PREFIX}weir:$TAG" -f deploy/docker/weir.Dockerfile "$WORK/weir" >/dev/null
# The example flows image also has a shell and sleep from this machine, for plain commands run
# through `weir exec` (the hello-docker example).
deploy/docker/rootfs.sh "$WORK/flows" "$FROM_DIR/example-flows" "$FROM_DIR/weir" \
    "$(command -v sh)" "$(command -v sleep)"
docker build -q -t "${PREFIX}weir-example-flows:$TAG" -f deploy/docker/flows-rust.Dockerfile \
    "$WORK/flows" >/dev/null
echo "build-images: built ${PREFIX}weir:$TAG and ${PREFIX}weir-example-flows:$TAG from $FROM_DIR" >&2
