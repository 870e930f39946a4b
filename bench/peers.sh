# bench/peers.sh - sourced by bench/run.sh and bench/instr.sh: the peer
# allocators' libraries and what installs them from Debian's packages.
LIB=/usr/lib/x86_64-linux-gnu

# Prints the packages of the peers that are not installed.
peers_missing() {
    [ -e "$LIB/libjemalloc.so.2" ] || printf ' libjemalloc2'
    [ -e "$LIB/libmimalloc.so.2" ] || printf ' libmimalloc2.0'
    [ -e "$LIB/libtcmalloc_minimal.so.4" ] || printf ' libtcmalloc-minimal4'
}

# install_missing WHO PACKAGES: apt-get install them, as root only; warns
# (the missing pieces are then skipped) when that cannot be done.
install_missing() {
    [ -n "$2" ] || return 0
    echo "$1: installing missing packages:$2"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $2 ||
            echo "$1: WARNING: apt-get install failed; missing pieces will be skipped"
    else
        echo "$1: WARNING: not root or no apt-get; missing pieces will be skipped"
    fi
}
