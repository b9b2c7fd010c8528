# Shared by the bench scripts (sourced, not run).

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# voipd_config FILE LISTEN [LINE]: voipd listening on LISTEN (the body of a TOML list of
# "TRANSPORT:IP:PORT"), with account alice whose provider is 127.0.0.1, G.711 only,
# silence as input, nothing recorded, quiet logs; LINE is added to the account.
voipd_config() {
  cat > "$1" <<CFG
[log]
level = "warn"
[sip]
listen = [$2]
[audio]
input = "null"
output = "null"
[[account]]
id = "alice"
aor = "sip:alice@127.0.0.1"
enabled = false
codecs = ["pcmu"]
${3:-}
CFG
}

# autoanswer_config FILE PORT: as voipd_config on udp PORT, answering every call at once.
autoanswer_config() { voipd_config "$1" "\"udp:127.0.0.1:$2\"" 'answer = { mode = "auto" }'; }
