# Sourced by the test scripts: a Python virtualenv that holds the pinned packages.
#
#     source "$(dirname "$0")/lib/venv.sh"
#     pinned_venv /tmp/weir-x-venv "pkg==1.2.3" "other[extra]==4.5"
#
# The virtualenv is made once with ${WEIR_TEST_PYTHON:-python3} and reused while it holds
# exactly those versions; otherwise they are installed into it from PyPI. Debian's python3
# needs python3-venv for `-m venv`: as root with apt-get, it is installed when missing.
# Everything goes to stderr, so a script whose stdout is `eval`ed prints only its export
# line. The caller holds any lock it needs and defines `say` (a line to stderr naming it).
pinned_venv() {
    local dir="$1"; shift
    local python="${WEIR_TEST_PYTHON:-python3}"
    if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c '
import re, sys, importlib.metadata as m
for pin in sys.argv[1:]:
    name, version = pin.split("==")
    if m.version(re.sub(r"\[.*\]", "", name)) != version:
        sys.exit(1)
' "$@" 2>/dev/null; then
        return 0
    fi
    command -v "$python" >/dev/null \
        || { say "error: $python not found (set WEIR_TEST_PYTHON to a Python 3.10+)"; return 1; }
    if [ ! -x "$dir/bin/pip" ]; then
        say "creating a virtualenv in $dir"
        if ! "$python" -m venv "$dir" >&2; then
            if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
                say "installing python3-venv"
                apt-get install -y -q python3-venv >&2 \
                    || { apt-get update -q >&2 && apt-get install -y -q python3-venv >&2; } \
                    || { say "error: cannot install python3-venv"; return 1; }
                rm -rf "$dir/bin" "$dir/lib" "$dir/pyvenv.cfg"
                "$python" -m venv "$dir" >&2 \
                    || { say "error: cannot create a virtualenv in $dir"; return 1; }
            else
                say "error: cannot create a virtualenv in $dir (install python3-venv)"
                return 1
            fi
        fi
    fi
    say "installing $* from PyPI into $dir (once)"
    "$dir/bin/pip" install --disable-pip-version-check -q "$@" >&2 \
        || { say "error: pip install $* failed"; return 1; }
}
