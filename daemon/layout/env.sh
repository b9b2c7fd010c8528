# Sourced by ./dev and bench/lib.sh, with CARGO_TARGET_DIR set: x86-64 links go through
# daemon/layout/cc, which lays out voipd's start-up code (daemon/build.rs hands it the list
# only then). Cargo counts the linker's path among a build's settings, so the wrapper is
# copied to the same path for every clone, in the shared target dir: linked from the clone
# itself, each other clone (CI's) rebuilt every crate, the dependencies too.
if [ "$(uname -m)" = x86_64 ]; then
  voipd_layout_cc="$CARGO_TARGET_DIR/voipd-layout-cc"
  cmp -s "$(dirname "${BASH_SOURCE[0]}")/cc" "$voipd_layout_cc" 2>/dev/null ||
    install -D -m 755 "$(dirname "${BASH_SOURCE[0]}")/cc" "$voipd_layout_cc"
  export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER="$voipd_layout_cc"
fi
