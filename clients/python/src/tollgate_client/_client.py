"""The thread-safe client over http.client, with keep-alive connections and a total deadline."""

from __future__ import annotations

import http.client
import io
import logging
import socket
import threading
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from . import _core
from ._core import VendorIDLike
from ._types import Decision, SidecarUnavailableError, UsageFacts, UsageResult, Vendor, fallback_decision

log = logging.getLogger("tollgate_client")

# Idle connections are dropped before the sidecar's 60 s idle timeout would close them under us.
_IDLE_TIMEOUT = 50.0


class _DeadlineSocket:
    """A socket whose every send and receive waits at most until its connection's deadline, so
    a request never takes longer than the client's timeout in total, however the answer trickles
    in (a per-operation socket timeout alone would restart on every byte)."""

    def __init__(self, sock: socket.socket, conn: "_Connection") -> None:
        self._sock = sock
        self._conn = conn

    def _arm(self) -> None:
        remaining = self._conn.deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out")
        self._sock.settimeout(remaining)

    def sendall(self, data: bytes) -> None:
        self._arm()
        self._sock.sendall(data)

    def recv_into(self, b: Any) -> int:
        self._arm()
        return self._sock.recv_into(b)

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self))

    def close(self) -> None:
        self._sock.close()


class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock: _DeadlineSocket) -> None:
        self._s = sock

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        return self._s.recv_into(b)


class _Connection(http.client.HTTPConnection):
    deadline = 0.0

    def connect(self) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out")
        sock = socket.create_connection((self.host, self.port), remaining)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = _DeadlineSocket(sock, self)  # type: ignore[assignment]


class _Pool:
    """Idle keep-alive connections, most recently used first. A connection is used by one
    thread at a time: it leaves the pool for the request and comes back after it."""

    def __init__(self, host: str, port: int, max_idle: int) -> None:
        self._host, self._port, self._max_idle = host, port, max_idle
        self._idle: List[Tuple[_Connection, float]] = []
        self._lock = threading.Lock()

    def get(self) -> Tuple[_Connection, bool]:
        now = time.monotonic()
        stale: List[_Connection] = []
        conn: Optional[_Connection] = None
        with self._lock:
            while self._idle:
                c, since = self._idle.pop()
                if now - since < _IDLE_TIMEOUT:
                    conn = c
                    break
                stale.append(c)
        for c in stale:
            c.close()
        if conn is not None:
            return conn, True
        return _Connection(self._host, self._port), False

    def put(self, conn: _Connection) -> None:
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append((conn, time.monotonic()))
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for c, _ in idle:
            c.close()


def _describe(e: BaseException, timeout: float) -> str:
    if isinstance(e, socket.timeout):
        return f"no answer within {timeout:g}s"
    return f"{type(e).__name__}: {e}"


class Client:
    """A client of one tollgate sidecar, safe to share between threads.

    Every call takes at most ``timeout`` seconds in total (connect, send and receive). When the
    sidecar is unreachable, too slow or answers 5xx, checks answer a decision with code
    ``sidecar_unavailable``: a deny by default, an allow with ``fail_open=True``; the other
    calls raise SidecarUnavailableError. A refused request (4xx) raises TollgateError.
    """

    def __init__(self, base_url: str = "http://127.0.0.1:8181", timeout: float = 0.1, fail_open: bool = False,
                 max_idle_connections: int = 32) -> None:
        if timeout <= 0:
            raise ValueError("tollgate client: timeout must be > 0 seconds")
        host, port, self._prefix = _core.parse_base_url(base_url)
        self.base_url = base_url
        self.timeout = timeout
        self.fail_open = fail_open
        self._pool = _Pool(host, port, max_idle_connections)
        self._headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": _core.USER_AGENT}

    def close(self) -> None:
        """Closes the idle connections (the client stays usable)."""
        self._pool.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # The model's methods, with the model's answers.

    def can_create_order(self, vendor_id: VendorIDLike) -> Tuple[bool, Optional[str]]:
        """May the vendor place one more order this period? (allowed, None) or (False, reason)."""
        return _core.model_answer(self.check(vendor_id, _core.ACTION_ORDER_CREATE))

    def can_add_product(self, vendor_id: VendorIDLike, current_count: int) -> Tuple[bool, Optional[str]]:
        """May the vendor, holding current_count products, add one more?"""
        return _core.model_answer(self.check(vendor_id, _core.ACTION_PRODUCT_ADD, count=current_count))

    def can_add_team_member(self, vendor_id: VendorIDLike, current_count: int) -> Tuple[bool, Optional[str]]:
        """May the vendor, with current_count team members, add one more?"""
        return _core.model_answer(self.check(vendor_id, _core.ACTION_TEAM_MEMBER_ADD, count=current_count))

    def has_feature(self, vendor_id: VendorIDLike, feature: str) -> bool:
        """Is the feature on the vendor's plan (and the subscription active)?"""
        return self.check(vendor_id, _core.ACTION_FEATURE_USE, feature=feature).allow

    # The whole API.

    def check(self, vendor_id: VendorIDLike, action: str, **fields: Any) -> Decision:
        """POST /v1/check. fields: platform, count, custom_count, quantity, feature, months,
        custom, consume, idempotency_key, explain (None means absent)."""
        try:
            answer = self._call("check", "POST", "/v1/check", _core.check_body(vendor_id, action, fields))
        except SidecarUnavailableError as e:
            return self._fallback(e)
        return Decision.from_json(answer)

    def consume_order(self, vendor_id: VendorIDLike, idempotency_key: str, quantity: int = 1) -> Decision:
        """Checks and counts quantity orders in one atomic step; the same idempotency_key never
        counts twice (the repeat answers the first decision with replayed=True)."""
        return self.check(vendor_id, _core.ACTION_ORDER_CREATE, quantity=quantity, consume=True,
                          idempotency_key=idempotency_key)

    def check_batch(self, checks: Sequence[Mapping[str, Any]]) -> List[Decision]:
        """POST /v1/check/batch: each check is a mapping like {"vendor_id": "42", "action":
        "order.create"}; decisions come back in order. An entry whose evaluation failed is a
        deny carrying the error's code and message."""
        try:
            answer = self._call("check batch", "POST", "/v1/check/batch", _core.batch_body(checks))
        except SidecarUnavailableError as e:
            d = self._fallback(e)
            return [d for _ in checks]
        return _core.batch_results(answer)

    def report_usage(self, vendor_id: VendorIDLike, delta: int = 1, idempotency_key: Optional[str] = None,
                     metric: str = "orders") -> UsageResult:
        """POST /v1/usage: orders placed without a consuming check."""
        body = _core.usage_body(vendor_id, delta, idempotency_key, metric)
        return UsageResult.from_json(self._call("report usage", "POST", "/v1/usage", body))

    def report_usage_facts(self, vendor_id: VendorIDLike, *, products: Optional[int] = None,
                           team_members: Optional[int] = None, cms_pages: Optional[int] = None,
                           cms_custom_pages: Optional[int] = None, storage_bytes: Optional[int] = None) -> UsageFacts:
        """PUT /v1/vendors/{id}/usage: counts only the application knows. Absent (None) counts
        stay unchanged; at least one is required. No admin token is needed."""
        body = _core.usage_facts_body(products=products, team_members=team_members, cms_pages=cms_pages,
                                      cms_custom_pages=cms_custom_pages, storage_bytes=storage_bytes)
        return UsageFacts.from_json(self._call("report usage facts", "PUT", _core.vendor_path(vendor_id, "/usage"), body))

    def vendor(self, vendor_id: VendorIDLike) -> Vendor:
        """GET /v1/vendors/{id}: the whole state the policy sees. Unknown: TollgateError 404."""
        return Vendor.from_json(self._call("vendor", "GET", _core.vendor_path(vendor_id), None))

    def tiers(self) -> Dict[str, Any]:
        """GET /v1/tiers: the catalog in service."""
        return self._call("tiers", "GET", "/v1/tiers", None)

    # Transport.

    def _fallback(self, e: SidecarUnavailableError) -> Decision:
        log.warning("%s; answering %s", e, "allow (fail open)" if self.fail_open else "deny (fail closed)")
        return fallback_decision(self.fail_open)

    def _call(self, op: str, method: str, path: str, body: Any) -> Any:
        status, data = self._roundtrip(op, method, self._prefix + path, None if body is None else _core.encode(body))
        return _core.interpret(op, status, data)

    def _roundtrip(self, op: str, method: str, path: str, body: Optional[bytes]) -> Tuple[int, bytes]:
        deadline = time.monotonic() + self.timeout
        while True:
            conn, reused = self._pool.get()
            conn.deadline = deadline
            try:
                conn.request(method, path, body=body, headers=self._headers)
                resp = conn.getresponse()
                data = resp.read(_core.MAX_RESPONSE_BYTES + 1)
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                # A kept-alive connection the sidecar closed meanwhile fails before any answer;
                # the request never reached a handler, so it is sent again on a new connection.
                if reused and isinstance(e, (ConnectionResetError, BrokenPipeError, http.client.BadStatusLine)) \
                        and time.monotonic() < deadline:
                    continue
                raise SidecarUnavailableError(op, 0, _describe(e, self.timeout)) from None
            if len(data) > _core.MAX_RESPONSE_BYTES:
                conn.close()
                raise SidecarUnavailableError(op, resp.status, "answer exceeds the size limit")
            if resp.will_close:
                conn.close()
            else:
                self._pool.put(conn)
            return resp.status, data
