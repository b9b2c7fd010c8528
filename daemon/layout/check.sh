#!/usr/bin/env bash
# Whether a release voipd has its start-up code laid out together (see daemon/layout/cc):
# the functions daemon/layout/startup.names lists must mostly be in the binary (fewer means
# the list has aged: run daemon/layout/profile.sh again), and they must lie together, not
# spread across the binary (the link did not order them), with the start-up-only block
# between its markers (memory::release_startup_code gives back what lies between them).
#
# usage: daemon/layout/check.sh BINARY
set -euo pipefail
here="$(dirname "$0")"
bin="$1"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
nm -S -C --defined-only "$bin" \
  | awk 'NF >= 4 && $3 ~ /^[tTwW]$/ {n = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ /, "", n); print $1 " " $2 "\t" n}' > "$tmp"
paste -d '\t' <(cut -f 1 "$tmp") <(cut -f 2 "$tmp" | "$here/cc" --normalize) \
  | awk -F '\t' '
    FNR == NR { want[$0] = 1; listed++; next }
    $2 in want {
      split($1, s, " "); at = strtonum_hex(s[1]); size = strtonum_hex(s[2])
      if (!($2 in found)) { found[$2] = 1; nfound++ }
      bytes += size
      if (lo == "" || at < lo) lo = at
      if (at + size > hi) hi = at + size
      if ($2 == "voipd::memory::startup_code_begin") begin = at
      if ($2 == "voipd::memory::startup_code_end") end = at
    }
    function strtonum_hex(h,   i, v) {
      v = 0
      for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1
      return v
    }
    END {
      span = hi - lo
      printf "start-up layout: %d of %d listed functions in this binary, %.1f MB of code within %.1f MB\n",
        nfound, listed, bytes / 1e6, span / 1e6
      if (nfound < 0.8 * listed) { print "fewer than 80% found: run daemon/layout/profile.sh again" > "/dev/stderr"; exit 1 }
      if (span > 1.5 * bytes) { print "the listed functions are spread out: the link did not lay them out" > "/dev/stderr"; exit 1 }
      if (begin == "" || end == "" || end <= begin) { print "the start-up-only block is not between its markers" > "/dev/stderr"; exit 1 }
      printf "start-up-only code, given back once started: %.1f MB\n", (end - begin) / 1e6
    }' "$here/startup.names" -
