"""HTTP(S) transport: one connection per request, typed errors, retries with backoff for idempotent calls."""
from __future__ import annotations

import http.client
import json
import random
import socket
import ssl
import threading
import time
import urllib.parse
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Set

from ._version import __version__
from .errors import ClientClosed, ConnectionFailed, InvalidRequest, TLSError, error_from_response

Query = Mapping[str, Any]


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: Dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError:
            raise ConnectionFailed(f"server answered with malformed JSON (HTTP {self.status})") from None


class _NotSent(Exception):
    """The request never reached the server (connection refused, name not resolved): always safe to repeat."""


def _query_string(query: Optional[Query]) -> str:
    if not query:
        return ""
    items = []
    for k, v in query.items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = "true" if v else "false"
        items.append((k, str(v)))
    return "?" + urllib.parse.urlencode(items) if items else ""


class Transport:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        ca_file: str = "",
        url_from: str = "",
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        max_retries: int = 5,
        backoff: float = 0.25,
        max_backoff: float = 4.0,
        sleep: Callable[[float], None] = time.sleep,
        client_id: str = "",
        client_secret: str = "",
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidRequest(f"cannot use server URL {url!r} (use http://HOST:PORT or https://HOST:PORT)")
        self.url = url
        self.url_from = url_from
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._token = token
        # A service account: access tokens from POST /oauth/token, fetched when needed and before they expire.
        self._client_id = client_id
        self._client_secret = client_secret
        self._token_expires = 0.0
        self._token_lock = threading.Lock()
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_retries = max(0, int(max_retries))
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._ssl: Optional[ssl.SSLContext] = None
        if self._https:
            if ca_file:
                try:
                    with open(ca_file, "rb"):
                        pass
                except OSError as e:
                    raise InvalidRequest(f"cannot read the CA file {ca_file!r}: {e.strerror}") from None
            try:
                self._ssl = ssl.create_default_context(cafile=ca_file or None)
            except ssl.SSLError as e:
                raise InvalidRequest(f"the CA file {ca_file!r} holds no usable certificate: {e}") from None
        self._lock = threading.Lock()
        self._open: Set[http.client.HTTPConnection] = set()
        self._closed = False

    # -- connections
    def _connect(self, read_timeout: float) -> http.client.HTTPConnection:
        if self._closed:
            raise ClientClosed("the FastGPU client is closed")
        conn: http.client.HTTPConnection
        if self._https:
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=self.connect_timeout, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self.connect_timeout)
        try:
            conn.connect()
        except ssl.SSLCertVerificationError as e:
            conn.close()
            raise TLSError(
                f"TLS certificate of {self.url} is not trusted: {e.verify_message or e.reason} "
                f"(pass ca_file= or set FASTGPU_CA for a private CA)"
            ) from None
        except ssl.SSLError as e:
            conn.close()
            raise TLSError(f"TLS handshake with {self.url} failed (is it an HTTPS server? use http:// if not): {e}") from None
        except (ConnectionRefusedError, socket.gaierror, FileNotFoundError) as e:
            conn.close()
            raise _NotSent(str(e)) from None
        except OSError:
            conn.close()
            raise
        if conn.sock is not None:
            conn.sock.settimeout(read_timeout)
        with self._lock:
            if self._closed:
                conn.close()
                raise ClientClosed("the FastGPU client is closed")
            self._open.add(conn)
        return conn

    def _release(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._open.discard(conn)
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns = list(self._open)
            self._open.clear()
        # Shut the sockets down (a reader blocked on one wakes up); the thread using a connection closes it.
        for c in conns:
            try:
                sock = c.sock
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @property
    def closed(self) -> bool:
        return self._closed

    def _access_token(self, renew: bool = False) -> str:
        """The bearer token: the given one, or a service account's access token (fetched or renewed here)."""
        if not self._client_id:
            return self._token
        with self._token_lock:
            if renew or not self._token or time.monotonic() >= self._token_expires:
                answer = self.json(
                    "POST", "/oauth/token", body={"grant_type": "client_credentials", "client_id": self._client_id,
                                                  "client_secret": self._client_secret},
                    authenticate=False, idempotent=True)
                token = answer.get("access_token") if isinstance(answer, dict) else None
                if not isinstance(token, str) or not token:
                    raise ConnectionFailed(f"{self.url}/oauth/token answered without an access_token")
                lifetime = float(answer.get("expires_in") or 3600)
                self._token = token
                self._token_expires = time.monotonic() + max(0.0, lifetime - 60)  # renew a minute early
            return self._token

    def _headers(self, extra: Optional[Mapping[str, str]], has_body: bool, authenticate: bool = True) -> Dict[str, str]:
        h = {"User-Agent": f"fastgpu-sdk-python/{__version__}", "Accept": "application/json"}
        token = self._access_token() if authenticate else ""
        if token:
            h["Authorization"] = f"Bearer {token}"
        if has_body:
            h["Content-Type"] = "application/json"
        if extra:
            h.update(extra)
        return h

    def _unreachable(self, detail: str, refused: bool) -> ConnectionFailed:
        where = f" (URL from {self.url_from})" if self.url_from else ""
        if refused:
            return ConnectionFailed(
                f"cannot reach the FastGPU server at {self.url}{where}: is `fastgpu up` running? ({detail})"
            )
        return ConnectionFailed(f"request to the FastGPU server at {self.url}{where} failed: {detail}")

    def _delay(self, attempt: int, retry_after: Optional[float] = None) -> float:
        d = min(self.max_backoff, self.backoff * (2 ** attempt))
        d = d * random.uniform(0.5, 1.0)
        if retry_after is not None:
            d = max(d, retry_after)
        return d

    # -- requests
    def _send(
        self, method: str, target: str, payload: Optional[bytes], headers: Dict[str, str], read_timeout: float
    ) -> http.client.HTTPResponse:
        conn = self._connect(read_timeout)
        try:
            conn.request(method, target, body=payload, headers=headers)
            resp = conn.getresponse()
        except BaseException:
            self._release(conn)
            raise
        resp._fastgpu_conn = conn  # type: ignore[attr-defined]
        return resp

    def _finish(self, resp: http.client.HTTPResponse) -> None:
        self._release(resp._fastgpu_conn)  # type: ignore[attr-defined]

    def open(
        self,
        method: str,
        path: str,
        *,
        query: Optional[Query] = None,
        body: Any = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
        idempotent: Optional[bool] = None,
        authenticate: bool = True,
    ) -> http.client.HTTPResponse:
        """Sends the request (retrying as allowed) and returns the open 2xx response; the caller reads and
        then calls ``release(resp)``. Error answers are raised as the matching exception."""
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "PUT")
        payload = None if body is None else json.dumps(body).encode("utf-8")
        hdrs = self._headers(headers, payload is not None, authenticate)
        renewed = False
        target = self._prefix + path + _query_string(query)
        read_timeout = self.timeout if timeout is None else timeout
        attempt = 0
        while True:
            last = attempt >= self.max_retries
            try:
                resp = self._send(method, target, payload, hdrs, read_timeout)
            except _NotSent as e:
                # Nothing reached the server: repeating is safe for any call (the server may be starting).
                if last:
                    raise self._unreachable(str(e), refused=True) from None
                self._sleep(self._delay(attempt))
                attempt += 1
                continue
            except (ClientClosed, TLSError, InvalidRequest):
                raise
            except Exception as e:
                if self._closed:
                    raise ClientClosed("the FastGPU client is closed") from None
                if not isinstance(e, (OSError, http.client.HTTPException)):
                    raise
                detail = "timed out" if isinstance(e, (socket.timeout, TimeoutError)) else (str(e) or type(e).__name__)
                if not idempotent or last:
                    raise self._unreachable(detail, refused=False) from None
                self._sleep(self._delay(attempt))
                attempt += 1
                continue
            if 200 <= resp.status < 300:
                return resp
            try:
                data = resp.read(1 << 20)
            except (OSError, http.client.HTTPException):
                data = b""
            finally:
                self._finish(resp)
            retry_after: Optional[float] = None
            ra = resp.getheader("Retry-After")
            if ra:
                try:
                    retry_after = float(ra)
                except ValueError:
                    retry_after = None
            # 503: the server is starting, leading elsewhere or overloaded. 429 with Retry-After: a rate
            # limit that lifts. A 429 without it is a quota, which waiting does not fix.
            transient = resp.status == 503 or (resp.status == 429 and retry_after is not None)
            if transient and idempotent and not last and (retry_after is None or retry_after <= 30):
                self._sleep(self._delay(attempt, retry_after))
                attempt += 1
                continue
            if resp.status == 401 and authenticate and self._client_id and not renewed:
                # The access token expired or was revoked: one new one, then the request once more.
                renewed = True
                hdrs["Authorization"] = f"Bearer {self._access_token(renew=True)}"
                continue
            error = error_from_response(resp.status, data)
            if resp.status == 401 and not self._token and not self._client_id:
                error.message += " (no token was found: pass token=, set FASTGPU_TOKEN, or run fastgpu login)"
                error.args = (error.message,)
            raise error

    def release(self, resp: http.client.HTTPResponse) -> None:
        self._finish(resp)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Optional[Query] = None,
        body: Any = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
        idempotent: Optional[bool] = None,
        authenticate: bool = True,
    ) -> Response:
        resp = self.open(method, path, query=query, body=body, headers=headers, timeout=timeout, idempotent=idempotent,
                         authenticate=authenticate)
        try:
            data = resp.read()
        except Exception as e:
            if self._closed:
                raise ClientClosed("the FastGPU client is closed") from None
            if not isinstance(e, (OSError, http.client.HTTPException)):
                raise
            raise self._unreachable(f"reading the answer: {e}", refused=False) from None
        finally:
            self._finish(resp)
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)

    def json(self, method: str, path: str, **kw: Any) -> Any:
        return self.request(method, path, **kw).json()

    def chunks(self, resp: http.client.HTTPResponse, size: int = 65536) -> Iterator[bytes]:
        """The body of an open response as it arrives; releases the connection at the end."""
        try:
            while True:
                data = resp.read1(size)
                if not data:
                    return
                yield data
        finally:
            self._finish(resp)
