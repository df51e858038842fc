"""A small HTTP/JSON client of a Weir server (standard library only).

One `Client` per thread that uses it: it keeps one keep-alive connection. Errors are
`ApiError` (the server answered with an error; `transient` for 5xx and 429) or `TransportError`
(no answer; always transient).
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import urllib.parse
from typing import Any, Optional


class ApiError(Exception):
    """The server answered with an error status."""

    def __init__(self, status: int, body: str, url: str):
        self.status = status
        self.url = url
        self.body = body
        try:
            parsed = json.loads(body)
            self.message = parsed.get("message") or body
        except (ValueError, AttributeError):
            self.message = body.strip() or http.client.responses.get(status, "")
        super().__init__(f"{url}: HTTP {status}: {self.message}")

    @property
    def transient(self) -> bool:
        return self.status >= 500 or self.status == 429


class TransportError(Exception):
    """The server could not be reached or did not answer."""

    transient = True


def key_from_env() -> Optional[str]:
    """`WEIR_API_KEY`, else the admin key a local server keeps in `$WEIR_HOME/admin.key`."""
    k = os.environ.get("WEIR_API_KEY", "").strip()
    if k:
        return k
    home = os.environ.get("WEIR_HOME") or ".weir"
    try:
        with open(os.path.join(home, "admin.key")) as f:
            k = f.read().strip()
            return k or None
    except OSError:
        return None


class Client:
    """A client of the server at `base` (http:// or https://; certificates checked against the
    system's roots plus `WEIR_CA_FILE`)."""

    def __init__(self, base: str, token: Optional[str] = None, timeout: float = 60.0):
        u = urllib.parse.urlsplit(base.strip().rstrip("/"))
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"not an http(s) URL: {base!r}")
        self.base = base.strip().rstrip("/")
        self._scheme = u.scheme
        self._host = u.hostname
        self._port = u.port
        self._prefix = u.path
        self._token = token
        self._timeout = timeout
        self._conn: Optional[http.client.HTTPConnection] = None

    def clone(self) -> "Client":
        """A client of the same server with its own connection (for another thread)."""
        return Client(self.base, self._token, self._timeout)

    def _connect(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._scheme == "https":
                ctx = ssl.create_default_context()
                ca = os.environ.get("WEIR_CA_FILE")
                if ca:
                    ctx.load_verify_locations(ca)
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=ctx
                )
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method: str, path: str, body: Any = None, raw: Optional[bytes] = None) -> Any:
        """Sends one request; returns the decoded JSON answer (None for an empty one)."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        url = self._prefix + path
        for attempt in (1, 2):
            conn = self._connect()
            try:
                conn.request(method, url, body=data, headers=headers)
                resp = conn.getresponse()
                text = resp.read()
                break
            except (OSError, http.client.HTTPException) as e:
                self.close()
                # A kept-alive connection the server closed meanwhile: try once on a new one.
                if attempt == 2 or not isinstance(
                    e, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
                ):
                    raise TransportError(f"cannot reach {self.base}: {e}") from None
        if resp.status >= 400:
            raise ApiError(resp.status, text.decode(errors="replace"), self.base + path)
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise ApiError(resp.status, "the answer is not JSON", self.base + path) from None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None, raw: Optional[bytes] = None) -> Any:
        return self.request("POST", path, body if body is not None or raw is not None else {}, raw)
