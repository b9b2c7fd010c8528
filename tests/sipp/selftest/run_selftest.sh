#!/usr/bin/env bash
# Self-test of the SIPp scenarios in tests/sipp/: each registrar (UAS) scenario is played
# against a SIPp UAC helper from this directory (and reg_auth.xml also against sipsak, if
# installed); options_uac.xml is played against options_uas.xml. Good paths must exit 0,
# deliberately bad clients must make the registrar scenario exit 1.
#
# Usage: tests/sipp/selftest/run_selftest.sh [-k]     (-k keeps the work directory)
# Needs: sipp (Debian package sip-tester), ss (iproute2); sipsak optional. Takes about 45 s.
# Every process it starts is stopped by PID on exit. Ports: random, 20000-59999.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
SC=$(dirname "$HERE")
KEEP=0
[ "${1:-}" = "-k" ] && KEEP=1
WORK=$(mktemp -d /tmp/sipp-selftest.XXXXXX)
PIDS=()
FAILS=0

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    if [ "$KEEP" = 1 ]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

command -v sipp >/dev/null || { echo "sipp not found (apt-get install -y sip-tester)"; exit 2; }

# A random port P such that P and P+1 are free for UDP and TCP.
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        if [ -z "$(ss -Htauln "( sport = :$p or sport = :$((p + 1)) )")" ]; then
            echo "$p"; return
        fi
    done
}

# Wait until something listens on port $1 (proto flag $2: -u or -t).
wait_listen() {
    local i
    for i in $(seq 1 50); do
        [ -n "$(ss -Hln "$2" "( sport = :$1 )")" ] && return 0
        sleep 0.1
    done
    return 1
}

# run_pair NAME UAS_XML WANT_UAS UAC_XML WANT_UAC TRANSPORT "UAS ARGS" "UAC ARGS"
#   WANT_* is an exit code, or '-' for "don't care".
run_pair() {
    local name=$1 uas=$2 want_uas=$3 uac=$4 want_uac=$5 t=$6 uas_args=$7 uac_args=$8
    local d="$WORK/$name" p q upid rc_uas rc_uac pflag=-u
    [ "$t" = t1 ] && pflag=-t
    mkdir -p "$d"
    p=$(free_port); q=$((p + 1))
    # shellcheck disable=SC2086
    (cd "$d" && exec sipp -sf "$uas" -i 127.0.0.1 -p "$p" -t "$t" -m 1 -nostdin \
        -timeout 60s -timeout_error \
        -trace_err -error_file uas_err.log -trace_msg -message_file uas_msg.log \
        -trace_logs -log_file uas_logs.log -trace_screen -screen_file uas_screen.log \
        $uas_args >uas.out 2>&1) &
    upid=$!; PIDS+=("$upid")
    wait_listen "$p" "$pflag" || echo "  ($name: registrar not listening yet)"
    # shellcheck disable=SC2086
    (cd "$d" && exec sipp "127.0.0.1:$p" -sf "$uac" -i 127.0.0.1 -p "$q" -t "$t" -m 1 -nostdin \
        -timeout 60s -timeout_error -default_behaviors all,-bye \
        -trace_err -error_file uac_err.log -trace_msg -message_file uac_msg.log \
        $uac_args >uac.out 2>&1)
    rc_uac=$?
    wait "$upid"; rc_uas=$?
    report "$name" "$rc_uas" "$want_uas" "$rc_uac" "$want_uac" "$d"
}

report() {
    local name=$1 rc_uas=$2 want_uas=$3 rc_uac=$4 want_uac=$5 d=$6 ok=1
    [ "$want_uas" != - ] && [ "$rc_uas" != "$want_uas" ] && ok=0
    [ "$want_uac" != - ] && [ "$rc_uac" != "$want_uac" ] && ok=0
    if [ "$ok" = 1 ]; then
        printf 'PASS  %-28s server rc=%s (want %s)  client rc=%s (want %s)\n' \
            "$name" "$rc_uas" "$want_uas" "$rc_uac" "$want_uac"
    else
        FAILS=$((FAILS + 1))
        printf 'FAIL  %-28s server rc=%s (want %s)  client rc=%s (want %s)\n' \
            "$name" "$rc_uas" "$want_uas" "$rc_uac" "$want_uac"
        for f in "$d"/uas_err.log "$d"/uac_err.log "$d"/uas_logs.log; do
            [ -s "$f" ] && { echo "  --- $f"; tail -5 "$f"; echo; }
        done
    fi
}

AUTH="-au alice -ap alicepw"

# --- reg_auth.xml
run_pair auth_good      "$SC/reg_auth.xml" 0 "$HERE/uac_reg_auth.xml" 0 u1 "" "$AUTH"
run_pair auth_wrong_pw  "$SC/reg_auth.xml" 1 "$HERE/uac_reg_auth.xml" 1 u1 "" "-au alice -ap nope"
run_pair auth_good_tcp  "$SC/reg_auth.xml" 0 "$HERE/uac_reg_auth.xml" 0 t1 "" "$AUTH"
if command -v sipsak >/dev/null; then
    d="$WORK/auth_sipsak"; mkdir -p "$d"; p=$(free_port)
    (cd "$d" && exec sipp -sf "$SC/reg_auth.xml" -i 127.0.0.1 -p "$p" -m 1 -nostdin \
        -timeout 30s -timeout_error -trace_err -error_file uas_err.log \
        -trace_logs -log_file uas_logs.log >uas.out 2>&1) &
    upid=$!; PIDS+=("$upid")
    wait_listen "$p" -u
    timeout 20 sipsak -U -C "sip:alice@127.0.0.1:$((p + 1))" -s sip:alice@127.0.0.1 -r "$p" \
        -u alice -a alicepw -H 127.0.0.1 -l "$((p + 1))" -i >"$d/sipsak.out" 2>&1
    rc_uac=$?
    wait "$upid"; rc_uas=$?
    report auth_sipsak "$rc_uas" 0 "$rc_uac" 0 "$d"
fi

# --- reg_stale.xml
run_pair stale_good     "$SC/reg_stale.xml" 0 "$HERE/uac_reg_stale.xml" 0 u1 "" "$AUTH"
run_pair stale_wrong_pw "$SC/reg_stale.xml" 1 "$HERE/uac_reg_stale.xml" 1 u1 "" "-au alice -ap nope"

# --- reg_423.xml
run_pair 423_good       "$SC/reg_423.xml" 0 "$HERE/uac_reg_423.xml" 0 u1 "" "-key second_expires 1800"
run_pair 423_still_short "$SC/reg_423.xml" 1 "$HERE/uac_reg_423.xml" 1 u1 "" "-key second_expires 900"

# --- reg_503.xml
run_pair 503_good       "$SC/reg_503.xml" 0 "$HERE/uac_reg_503.xml" 0 u1 "" "-d 3000"
run_pair 503_too_soon   "$SC/reg_503.xml" 1 "$HERE/uac_reg_503.xml" 1 u1 "" "-d 1000"

# --- reg_refresh.xml
run_pair refresh_good   "$SC/reg_refresh.xml" 0 "$HERE/uac_reg_refresh.xml" 0 u1 "" "-d 2000"

# --- reg_silent.xml: 5 copies (original + 4 retransmissions at .5, 1.5, 3.5, 7.5 s), then quiet.
# The helper client gives up (rc 1); the silent registrar must exit 0 and have counted 5.
run_pair silent_udp_nr  "$SC/reg_silent.xml" 0 "$HERE/uac_reg_silent.xml" 1 u1 \
    "-nr -recv_timeout 8000" "-max_non_invite_retrans 4"
total=$(sed -n 's/.*total=\([0-9]*\).*/\1/p' "$WORK/silent_udp_nr/uas_logs.log" 2>/dev/null)
if [ "${total:-0}" = 5 ]; then
    echo "PASS  silent_udp_nr count         total=$total REGISTERs (1 + 4 retransmissions)"
else
    FAILS=$((FAILS + 1)); echo "FAIL  silent_udp_nr count         total=${total:-?} (want 5)"
fi

# --- options_uac.xml (the scenario under test is the client here)
d="$WORK/options"; mkdir -p "$d"; p=$(free_port)
(cd "$d" && exec sipp -sf "$HERE/options_uas.xml" -i 127.0.0.1 -p "$p" -m 200 -nostdin \
    -timeout 30s >uas.out 2>&1) &
upid=$!; PIDS+=("$upid")
wait_listen "$p" -u
(cd "$d" && exec sipp "127.0.0.1:$p" -sf "$SC/options_uac.xml" -i 127.0.0.1 -p "$((p + 1))" \
    -s alice -r 100 -m 200 -l 1000 -nostdin -default_behaviors all,-bye \
    -timeout 30s -timeout_error -trace_stat -stf stats.csv -fd 1 >uac.out 2>&1)
rc_uac=$?
wait "$upid"; rc_uas=$?
report options_load "$rc_uas" 0 "$rc_uac" 0 "$d"
# Last row of the -trace_stat CSV (';'-separated) is the final state.
counts=$(awk -F';' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i; next} END{print $c["SuccessfulCall(C)"], $c["FailedCall(C)"]}' "$d/stats.csv" 2>/dev/null)
if [ "$counts" = "200 0" ]; then
    echo "PASS  options_load stats.csv      SuccessfulCall(C) FailedCall(C) = $counts"
else
    FAILS=$((FAILS + 1)); echo "FAIL  options_load stats.csv      got '$counts', want '200 0'"
fi

echo
if [ "$FAILS" = 0 ]; then echo "all SIPp scenario self-tests passed"; else echo "$FAILS self-test(s) FAILED"; fi
[ "$FAILS" = 0 ]
