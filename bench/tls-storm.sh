#!/usr/bin/env bash
# A TLS registration storm: N accounts (default 500) registering at once through Kamailio's
# TLS port, with a CA made here by openssl; prints how long until all are registered, the
# TLS connections it took, and voipd's RSS before and after.
#
# usage: bench/tls-storm.sh [ACCOUNTS]
# Needs kamailio with kamailio-tls-modules, and openssl. Loopback only; it stops all it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-500}"
for t in kamailio openssl; do command -v $t >/dev/null || { echo "$t missing (apt-get install kamailio kamailio-tls-modules openssl)" >&2; exit 1; }; done
. bench/lib.sh
bench_start tlsstorm

# A CA, and a server certificate from it for 127.0.0.1.
cd "$work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem \
  -days 2 -subj /CN=bench-ca -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext
openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext -out srv.pem 2>/dev/null
cd - >/dev/null
printf '[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nprivate_key = %s\ncertificate = %s\n' \
  "$work/srv.key" "$work/srv.pem" > "$work/tls.cfg"

kport=$(free_port); tport=$(free_port)
mkdir -p "$work/k"
setsid kamailio -DD -E -f tests/peers/kamailio.cfg -Y "$work/k" -P "$work/k/pid" -m 256 \
  -A "LISTEN_PORT=$kport" -A CHILDREN=4 -A WITH_TLS -A "TLS_PORT=$tport" -A "TLS_CONFIG=\"$work/tls.cfg\"" \
  -A OPEN_REGISTRAR >"$work/kamailio.log" 2>&1 & kpid=$!
pids+=(-"$kpid")
for _ in $(seq 50); do grep -q KAMAILIO-READY "$work/kamailio.log" && break; sleep 0.1; done

mkdir -p "$work/v/cfg/voipd" "$work/v/run"
{
  printf '[log]\nlevel = "warn"\n[sip]\nlisten = ["udp:127.0.0.1:%s"]\n[audio]\ninput = "null"\noutput = "null"\n' "$(free_port)"
  for i in $(seq "$N"); do
    printf '[[account]]\nid = "u%s"\naor = "sip:u%s@127.0.0.1"\npassword = "x"\noutbound_proxy = "sip:127.0.0.1:%s;transport=tls"\ntls = { ca = "%s" }\n' \
      "$i" "$i" "$tport" "$work/ca.pem"
  done
} > "$work/v/cfg/voipd/config.toml"
t0=$(date +%s.%N)
XDG_CONFIG_HOME="$work/v/cfg" XDG_RUNTIME_DIR="$work/v/run" XDG_STATE_HOME="$work/v/state" \
  "$bin/voipd" 2>"$work/voipd.log" & vpid=$!
pids+=("$vpid")
ready=0
for _ in $(seq 600); do
  ready=$(XDG_RUNTIME_DIR="$work/v/run" "$bin/voipctl" --json accounts 2>/dev/null \
    | python3 -c 'import json,sys; print(sum(1 for a in json.load(sys.stdin).get("accounts",[]) if a["state"]=="registered"))' 2>/dev/null || echo 0)
  [ "$ready" -ge "$N" ] && break
  sleep 0.1
done
t1=$(date +%s.%N)
conns=$(ss -tnH state established "( sport = :$tport )" | wc -l)
printf 'tls storm: %s of %s accounts registered over TLS in %.2f s (from the daemon'"'"'s start, handshake included); %s TLS connection(s) at the registrar; voipd RSS %s kB\n' \
  "$ready" "$N" "$(python3 -c "print($t1-$t0)")" "$conns" "$(rss "$vpid")"
grep -c "REGISTER-SAVED" "$work/kamailio.log" | sed 's/^/kamailio saved /; s/$/ registrations/'
