"""Strata's Dockerfile example: answers every request with a greeting on $PORT."""

import http.server
import os
import sys

GREETING = os.environ.get("GREETING", "Hello from a Dockerfile!")


class Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive connections from the router

    def do_GET(self):
        if self.path == "/healthz":
            body = "ok\n"
        else:
            body = "%s (instance %s, release %s)\n" % (
                GREETING,
                os.environ.get("STRATA_INSTANCE_INDEX", ""),
                os.environ.get("STRATA_RELEASE", ""),
            )
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        sys.stdout.write("%s %s\n" % (self.command, self.path))
        sys.stdout.flush()


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    print("hello-dockerfile listening on :%d" % port, flush=True)
    http.server.ThreadingHTTPServer(("", port), Hello).serve_forever()
