"""A webhook receiver for the tests: HTTPS with the test CA's certificate, checking each
request's X-Voipd-Signature-256 against the secret, appending what came to a JSON-lines
file. Usage: webhook_receiver.py PORT CERT KEY SECRET OUT."""

import hashlib
import hmac
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, cert, key, secret, out = sys.argv[1:6]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        want = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        got = self.headers.get("X-Voipd-Signature-256", "")
        valid = hmac.compare_digest(want, got)
        record = {
            "path": self.path,
            "valid": valid,
            "event": self.headers.get("X-Voipd-Event"),
            "delivery": self.headers.get("X-Voipd-Delivery"),
            "content_type": self.headers.get("Content-Type"),
            "body": json.loads(body) if valid else None,
        }
        with open(out, "a") as f:
            f.write(json.dumps(record) + "\n")
        self.send_response(204 if valid else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
