"""Test app of the `python` image: an HTTP server on port 8000 (or argv[1]).

Every request lazily imports `json` and `email.utils`, resolves `localhost`
through NSS (getaddrinfo), builds a default TLS context (reads the CA bundle)
and answers 200 "ok". Any failure answers 500 with the error, so a slimmed
image that lost a lazily needed file fails visibly.
"""

import http.server
import socket
import sys

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 8000


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            import email.utils
            import json
            import ssl

            socket.getaddrinfo("localhost", PORT, proto=socket.IPPROTO_TCP)
            ctx = ssl.create_default_context()
            if ctx.cert_store_stats().get("x509_ca", 0) == 0:
                raise RuntimeError("no CA certificates loaded")
            json.dumps({"date": email.utils.formatdate(0, usegmt=True)})
            status, body = 200, b"ok"
        except Exception as e:  # report, do not crash the server
            status, body = 500, ("error: %r\n" % (e,)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    server = http.server.HTTPServer(("0.0.0.0", PORT), Handler)
    print("python server listening on 0.0.0.0:%d" % PORT, file=sys.stderr, flush=True)
    server.serve_forever()
