#!/usr/bin/python3
"""An HTTP(S) server that misbehaves on purpose, for the sp-fetch tests.

GET /MODE/FILE serves DIR/FILE as MODE says:
  ok          normal, with Range support (206 and Content-Range)
  cut         without a Range header: the full Content-Length, half the body,
              then the connection is dropped; with Range: normal
  norange     ignores Range: always 200 and the whole file
  416         any Range request gets 416; otherwise 200
  stall       without a Range header: the full Content-Length, half the body,
              then silence; with Range: normal
  hang        like stall, with or without Range
  redirect-http  302 to http://127.0.0.1:PLAIN_PORT/ok/FILE
  wrong       200 with bytes of the right length but not the file's
  notfound    404 with an HTML error page as body
  error       500 with an HTML error page as body
  endless     200 with no length, bytes until the client leaves
  forbidden   403 with an HTML error page as body
  busy        503 to the first request for each file, then as ok
  short       200 with a Content-Length of half the file, and that half
A FILE named manifest.json is served as ok whatever the mode (the modes
act on the shards of a set served under /MODE/SET/).
Every request is logged to LOG as "GET /MODE/FILE range=RANGE".

PUT /MODE/FILE stores the body as DIR/FILE (its folders made; written to a
temporary and renamed, as nginx's WebDAV does), answering 201, as MODE says:
  ok          as above
  busy        503 to the first PUT of each FILE (its body read), then as ok
  cut         the first PUT of each FILE: half its body read, then the
              connection is dropped; then as ok
HEAD /MODE/FILE answers 200 with DIR/FILE's length, or 404. Each PUT is
logged as "PUT /MODE/FILE STATUS" ("cut" for a dropped one).
The chosen port is written to PORT_FILE once the server listens.

usage: fault_server.py DIR PORT_FILE LOG [--tls CERT KEY] [--plain-port N]
"""
import argparse
import http.server
import os
import socket
import ssl
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("port_file")
    ap.add_argument("log")
    ap.add_argument("--tls", nargs=2)
    ap.add_argument("--plain-port", type=int, default=0)
    a = ap.parse_args()
    lock = threading.Lock()
    busy_seen = set()
    put_seen = set()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def send_body_headers(self, code, length, extra=()):
            self.send_response(code)
            if length is not None:
                self.send_header("Content-Length", str(length))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()

        def page(self, code):
            body = b"<html><body>ERROR PAGE %d</body></html>\n" % code
            self.send_body_headers(code, len(body), [("Content-Type", "text/html")])
            self.wfile.write(body)

        def do_HEAD(self):
            parts = self.path.split("/", 2)
            path = os.path.join(a.dir, parts[2]) if len(parts) == 3 else ""
            if not os.path.isfile(path):
                self.send_body_headers(404, 0)
            else:
                self.send_body_headers(200, os.path.getsize(path))

        def do_PUT(self):
            parts = self.path.split("/", 2)
            length = int(self.headers.get("Content-Length", "0"))
            mode, name = (parts[1], parts[2]) if len(parts) == 3 else ("", "")
            with lock:
                first = (mode, name) not in put_seen
                put_seen.add((mode, name))
            status = 201
            if mode == "cut" and first:
                self.rfile.read(length // 2)
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                status = "cut"
            else:
                body = self.rfile.read(length)
                if mode not in ("ok", "busy", "cut") or ".." in name.split("/"):
                    status = 405
                elif mode == "busy" and first:
                    status = 503
                else:
                    path = os.path.join(a.dir, name)
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with open(path + ".put", "wb") as f:
                        f.write(body)
                    os.rename(path + ".put", path)
                self.send_body_headers(status, 0)
            with lock, open(a.log, "a") as log:
                log.write(f"PUT {self.path} {status}\n")

        def do_GET(self):
            rng = self.headers.get("Range")
            with lock, open(a.log, "a") as log:
                log.write(f"GET {self.path} range={rng or '-'}\n")
            parts = self.path.split("/", 2)
            if len(parts) != 3:
                return self.page(404)
            mode, name = parts[1], parts[2]
            path = os.path.join(a.dir, name)
            if not os.path.isfile(path):
                return self.page(404)
            data = open(path, "rb").read()
            if name.endswith("manifest.json"):
                mode = "ok"
            if mode == "busy":
                with lock:
                    first = path not in busy_seen
                    busy_seen.add(path)
                mode = "busy-first" if first else "ok"
            start = None
            if rng and rng.startswith("bytes=") and rng.endswith("-"):
                start = int(rng[6:-1])
            if mode == "ok" or (mode == "cut" and start is not None) or (mode == "stall" and start is not None):
                if start is not None:
                    if start >= len(data):
                        self.send_body_headers(416, 0, [("Content-Range", f"bytes */{len(data)}")])
                        return
                    self.send_body_headers(206, len(data) - start,
                                           [("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")])
                    self.wfile.write(data[start:])
                else:
                    self.send_body_headers(200, len(data))
                    self.wfile.write(data)
            elif mode == "cut":
                self.send_body_headers(200, len(data))
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
            elif mode == "norange":
                self.send_body_headers(200, len(data))
                self.wfile.write(data)
            elif mode == "416":
                if start is not None:
                    self.send_body_headers(416, 0, [("Content-Range", f"bytes */{len(data)}")])
                else:
                    self.send_body_headers(200, len(data))
                    self.wfile.write(data)
            elif mode in ("stall", "hang"):
                self.send_body_headers(200, len(data))
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                time.sleep(60)
                self.close_connection = True
            elif mode == "redirect-http":
                self.send_body_headers(302, 0, [("Location", f"http://127.0.0.1:{a.plain_port}/ok/{name}")])
            elif mode == "wrong":
                self.send_body_headers(200, len(data))
                self.wfile.write(bytes(b ^ 0x5A for b in data))
            elif mode == "notfound":
                self.page(404)
            elif mode == "forbidden":
                self.page(403)
            elif mode == "busy-first":
                self.page(503)
            elif mode == "short":
                self.send_body_headers(200, len(data) // 2)
                self.wfile.write(data[: len(data) // 2])
            elif mode == "error":
                self.page(500)
            elif mode == "endless":
                self.send_response(200)
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                try:
                    while True:
                        self.wfile.write(b"\0" * 65536)
                except OSError:
                    pass
            else:
                self.page(404)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls[0], a.tls[1])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(a.port_file + ".tmp", a.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
