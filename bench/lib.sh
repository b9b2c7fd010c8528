# Shared by the bench scripts (sourced, not run).

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# autoanswer_config FILE PORT: voipd on udp PORT answering every call at once, G.711 only,
# silence as input, nothing recorded, quiet logs.
autoanswer_config() {
  cat > "$1" <<CFG
[log]
level = "warn"
[sip]
listen = ["udp:127.0.0.1:$2"]
[audio]
input = "null"
output = "null"
[[account]]
id = "alice"
aor = "sip:alice@127.0.0.1"
enabled = false
codecs = ["pcmu"]
answer = { mode = "auto" }
CFG
}
