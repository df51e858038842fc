"""Log lines sent again are stored once: the SDK numbers its lines (attempt, the process's
stream, the line's number in it) like the Rust SDK, and the server keeps each number once.

A fault proxy in front of a real `weir server` forwards every request, but answers the first
log batch with a 503 *after* the server stored it (what a client sees when a server or the
proxy in front of it fails after the commit): the SDK sends the batch again, and every line
must be in the run's log exactly once."""

import http.client
import http.server
import threading
import urllib.parse

from conftest import FLOWS, weir_py

CHATTER = str(FLOWS / "chatter.py")


class _FaultProxy:
    """Forwards requests to `upstream`; the first `POST /api/v1/logs/batch` is forwarded, then
    answered 503 instead of the server's answer."""

    def __init__(self, upstream: str):
        target = urllib.parse.urlsplit(upstream)
        self.host, self.port = target.hostname, target.port
        self.faults = 1
        self.log_batches = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection", "content-length")}
                conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=30)
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                conn.close()
                fault = False
                if self.command == "POST" and self.path.startswith("/api/v1/logs/batch"):
                    with proxy.lock:
                        proxy.log_batches.append((answer.status, body))
                        if proxy.faults > 0 and answer.status == 200:
                            proxy.faults -= 1
                            fault = True
                if fault:
                    data = b'{"error":{"kind":"unavailable","message":"injected after commit"}}'
                    self.send_response(503)
                    self.send_header("Content-Type", "application/json")
                else:
                    self.send_response(answer.status)
                    for k, v in answer.getheaders():
                        if k.lower() not in ("connection", "content-length",
                                             "transfer-encoding"):
                            self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_log_batch_sent_again_after_a_5xx_is_stored_once(server, project):
    proxy = _FaultProxy(server.url)
    try:
        r = weir_py(CHATTER, "run", "chatter", "--param", "n=40", server=server,
                    env={"WEIR_API_URL": proxy.url}, timeout=120)
    finally:
        proxy.close()
    assert r.code == 0, r
    assert r.value == 40
    statuses = [s for s, _ in proxy.log_batches]
    assert len(statuses) >= 2 and statuses[0] == 200, (
        f"the first batch was stored, answered 503 and sent again: {statuses}")
    # The resent batch is the same batch, byte for byte: the same numbers.
    assert proxy.log_batches[1][1] == proxy.log_batches[0][1]
    messages = [line["message"] for line in server.logs(r.run_id)]
    want = [f"line {i} of 40" for i in range(1, 41)]
    assert [m for m in messages if m.startswith("line ")] == want, messages
