# shellcheck shell=bash
# as-root.sh: sourced by the scripts that run containers (demo.sh, test.sh).
#
# as_root SCRIPT [ARGS...]: returns if we are root; else re-runs SCRIPT with
# sudo, keeping PATH and rustup's home so that the same cargo is found, or
# says why it cannot and exits.
as_root() {
    [ "$(id -u)" = 0 ] && return 0
    local name
    name=$(basename "$1")
    if ! command -v sudo >/dev/null; then
        echo "$name: needs root (it runs containers): run it as root, or install sudo" >&2
        exit 1
    fi
    echo "$name: not root: re-running with sudo" >&2
    if ! sudo -v; then
        echo "$name: needs root, and sudo refused: run it as root, or as a user allowed to use sudo" >&2
        exit 1
    fi
    local keep=(PATH="$PATH")
    if [ -n "${RUSTUP_HOME:-}" ] || [ -d "$HOME/.rustup" ]; then
        keep+=(RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}")
    fi
    exec sudo env "${keep[@]}" "$@"
}
