#!/usr/bin/env bash
# Assembles the build context of a FROM scratch image: the given programs, the shared
# libraries they link (none for a static build), CA certificates, /tmp and an unprivileged
# user. No base image and no registry are needed; the same context builds anywhere.
#
#     deploy/docker/rootfs.sh OUT [--python PYTHON] [--copy SRC DEST]... PROGRAM...
#
#   OUT                 the context directory (rootfs/ inside it is the image's /)
#   PROGRAM             a binary, installed as /usr/local/bin/<name>
#   --python PYTHON     also an interpreter with its standard library (for Python flows),
#                       installed as /usr/local/bin/python3
#   --copy SRC DEST     also copy file or directory SRC to DEST in the image
#
# Then: docker build -f deploy/docker/<image>.Dockerfile OUT
set -euo pipefail

die() { echo "rootfs.sh: $*" >&2; exit 2; }
[ $# -ge 2 ] || die "usage: rootfs.sh OUT [--python PYTHON] [--copy SRC DEST]... PROGRAM..."
out="$1"; shift
root="$out/rootfs"
rm -rf "$root"
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp"
chmod 1777 "$root/tmp"

# The shared libraries (and the loader) `ldd` lists for $1, copied to their own paths.
libs() {
    { ldd "$1" 2>/dev/null || true; } | { grep -oE '/[^ ]+' || true; } | while read -r lib; do
        [ -e "$lib" ] || continue
        mkdir -p "$root$(dirname "$lib")"
        cp -Ln "$lib" "$root$lib" 2>/dev/null || true
    done
}

python=""
programs=()
while [ $# -gt 0 ]; do
    case "$1" in
        --python) python="${2:?--python needs an interpreter}"; shift 2 ;;
        --copy)
            src="${2:?--copy needs SRC DEST}"; dest="${3:?--copy needs SRC DEST}"; shift 3
            [ -e "$src" ] || die "$src does not exist"
            mkdir -p "$root$(dirname "$dest")"
            cp -rL "$src" "$root$dest" ;;
        *) programs+=("$1"); shift ;;
    esac
done

for p in "${programs[@]}"; do
    [ -x "$p" ] || die "$p is not an executable (build it first, e.g. cargo build --release)"
    cp -L "$p" "$root/usr/local/bin/$(basename "$p")"
    libs "$p"
done

if [ -n "$python" ]; then
    # The interpreter itself, not a launcher script (pyenv's shims are shell scripts).
    exe="$("$python" -c 'import os, sys; print(os.path.realpath(sys.executable))')" \
        || die "$python not found"
    stdlib="$("$exe" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')"
    cp -L "$exe" "$root/usr/local/bin/python3"
    libs "$exe"
    mkdir -p "$root$stdlib"
    # The standard library without its tests, the GUI and the installer (imported by no flow).
    tar -C "$stdlib" -cf - \
        --exclude=__pycache__ --exclude=test --exclude=tests --exclude=idlelib \
        --exclude=tkinter --exclude=turtledemo --exclude=ensurepip --exclude=lib2to3 \
        --exclude=site-packages --exclude=dist-packages --exclude=config-\* . \
        | tar -C "$root$stdlib" -xf -
    for so in "$root$stdlib"/lib-dynload/*.so; do libs "$so"; done
    # The interpreter finds its standard library through its own path: keep the original
    # directory layout and point at it.
    echo "PYTHONHOME=$(dirname "$(dirname "$stdlib")")" > "$out/python.env"
fi

for ca in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
    if [ -f "$ca" ]; then cp -L "$ca" "$root/etc/ssl/certs/ca-certificates.crt"; break; fi
done
printf 'root:x:0:0:root:/root:/sbin/nologin\nweir:x:10001:10001:weir:/tmp:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\nweir:x:10001:\n' > "$root/etc/group"
echo "rootfs.sh: $root ($(du -sh "$root" | cut -f1))" >&2
