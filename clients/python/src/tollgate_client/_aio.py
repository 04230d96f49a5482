"""The asyncio client: the same methods as coroutines, over asyncio streams with keep-alive."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from . import _core
from ._core import VendorIDLike
from ._types import Decision, SidecarUnavailableError, UsageFacts, UsageResult, Vendor, fallback_decision

log = logging.getLogger("tollgate_client")

_IDLE_TIMEOUT = 50.0  # below the sidecar's 60 s idle timeout
_MAX_HEAD = 64 << 10


class _StaleConnection(Exception):
    """A kept-alive connection was closed by the sidecar before it answered."""


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def close(self) -> None:
        self.writer.close()


class AsyncClient:
    """Client's methods as coroutines, for one event loop (create the client inside it).

    Each call takes at most ``timeout`` seconds in total; fallback and errors are as in
    Client: checks answer ``sidecar_unavailable`` decisions, the other calls raise
    SidecarUnavailableError, a refused request raises TollgateError.
    """

    def __init__(self, base_url: str = "http://127.0.0.1:8181", timeout: float = 0.1, fail_open: bool = False,
                 max_idle_connections: int = 32) -> None:
        if timeout <= 0:
            raise ValueError("tollgate client: timeout must be > 0 seconds")
        self._host, self._port, self._prefix = _core.parse_base_url(base_url)
        self.base_url = base_url
        self.timeout = timeout
        self.fail_open = fail_open
        self._max_idle = max_idle_connections
        self._idle: List[Tuple[_Conn, float]] = []
        hostport = self._host if self._port == 80 else f"{self._host}:{self._port}"
        if ":" in self._host:
            hostport = f"[{self._host}]:{self._port}"
        self._head = (f"Host: {hostport}\r\nAccept: application/json\r\nUser-Agent: {_core.USER_AGENT}\r\n").encode("latin-1")

    async def aclose(self) -> None:
        """Closes the idle connections (the client stays usable)."""
        idle, self._idle = self._idle, []
        for c, _ in idle:
            c.close()
            try:
                await c.writer.wait_closed()
            except OSError:
                pass

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    # The model's methods.

    async def can_create_order(self, vendor_id: VendorIDLike) -> Tuple[bool, Optional[str]]:
        return _core.model_answer(await self.check(vendor_id, _core.ACTION_ORDER_CREATE))

    async def can_add_product(self, vendor_id: VendorIDLike, current_count: int) -> Tuple[bool, Optional[str]]:
        return _core.model_answer(await self.check(vendor_id, _core.ACTION_PRODUCT_ADD, count=current_count))

    async def can_add_team_member(self, vendor_id: VendorIDLike, current_count: int) -> Tuple[bool, Optional[str]]:
        return _core.model_answer(await self.check(vendor_id, _core.ACTION_TEAM_MEMBER_ADD, count=current_count))

    async def has_feature(self, vendor_id: VendorIDLike, feature: str) -> bool:
        return (await self.check(vendor_id, _core.ACTION_FEATURE_USE, feature=feature)).allow

    # The whole API.

    async def check(self, vendor_id: VendorIDLike, action: str, **fields: Any) -> Decision:
        try:
            answer = await self._call("check", "POST", "/v1/check", _core.check_body(vendor_id, action, fields))
        except SidecarUnavailableError as e:
            return self._fallback(e)
        return Decision.from_json(answer)

    async def consume_order(self, vendor_id: VendorIDLike, idempotency_key: str, quantity: int = 1) -> Decision:
        return await self.check(vendor_id, _core.ACTION_ORDER_CREATE, quantity=quantity, consume=True,
                                idempotency_key=idempotency_key)

    async def check_batch(self, checks: Sequence[Mapping[str, Any]]) -> List[Decision]:
        try:
            answer = await self._call("check batch", "POST", "/v1/check/batch", _core.batch_body(checks))
        except SidecarUnavailableError as e:
            d = self._fallback(e)
            return [d for _ in checks]
        return _core.batch_results(answer)

    async def report_usage(self, vendor_id: VendorIDLike, delta: int = 1, idempotency_key: Optional[str] = None,
                           metric: str = "orders") -> UsageResult:
        body = _core.usage_body(vendor_id, delta, idempotency_key, metric)
        return UsageResult.from_json(await self._call("report usage", "POST", "/v1/usage", body))

    async def report_usage_facts(self, vendor_id: VendorIDLike, *, products: Optional[int] = None,
                                 team_members: Optional[int] = None, cms_pages: Optional[int] = None,
                                 cms_custom_pages: Optional[int] = None,
                                 storage_bytes: Optional[int] = None) -> UsageFacts:
        body = _core.usage_facts_body(products=products, team_members=team_members, cms_pages=cms_pages,
                                      cms_custom_pages=cms_custom_pages, storage_bytes=storage_bytes)
        return UsageFacts.from_json(await self._call("report usage facts", "PUT", _core.vendor_path(vendor_id, "/usage"), body))

    async def vendor(self, vendor_id: VendorIDLike) -> Vendor:
        return Vendor.from_json(await self._call("vendor", "GET", _core.vendor_path(vendor_id), None))

    async def tiers(self) -> Dict[str, Any]:
        return await self._call("tiers", "GET", "/v1/tiers", None)

    # Transport.

    def _fallback(self, e: SidecarUnavailableError) -> Decision:
        log.warning("%s; answering %s", e, "allow (fail open)" if self.fail_open else "deny (fail closed)")
        return fallback_decision(self.fail_open)

    async def _call(self, op: str, method: str, path: str, body: Any) -> Any:
        payload = None if body is None else _core.encode(body)
        deadline = time.monotonic() + self.timeout
        while True:
            conn, reused = await self._get(op, deadline)
            try:
                status, data, keep = await asyncio.wait_for(
                    self._exchange(conn, method, self._prefix + path, payload, reused), max(deadline - time.monotonic(), 0))
            except _StaleConnection:
                conn.close()
                if time.monotonic() < deadline:
                    continue  # the request never reached a handler; send it on a new connection
                raise SidecarUnavailableError(op, 0, f"no answer within {self.timeout:g}s") from None
            except asyncio.TimeoutError:
                conn.close()
                raise SidecarUnavailableError(op, 0, f"no answer within {self.timeout:g}s") from None
            except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
                conn.close()
                raise SidecarUnavailableError(op, 0, f"{type(e).__name__}: {e}") from None
            except BaseException:
                conn.close()  # cancelled: the connection is mid-request, never reuse it
                raise
            if keep and len(self._idle) < self._max_idle:
                self._idle.append((conn, time.monotonic()))
            else:
                conn.close()
            return _core.interpret(op, status, data)

    async def _get(self, op: str, deadline: float) -> Tuple[_Conn, bool]:
        now = time.monotonic()
        while self._idle:
            c, since = self._idle.pop()
            if now - since < _IDLE_TIMEOUT and not c.reader.at_eof():
                return c, True
            c.close()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self._host, self._port),
                                                    max(deadline - now, 0))
        except asyncio.TimeoutError:
            raise SidecarUnavailableError(op, 0, f"no answer within {self.timeout:g}s") from None
        except OSError as e:
            raise SidecarUnavailableError(op, 0, f"{type(e).__name__}: {e}") from None
        return _Conn(reader, writer), False

    async def _exchange(self, conn: _Conn, method: str, path: str, payload: Optional[bytes],
                        reused: bool) -> Tuple[int, bytes, bool]:
        head = f"{method} {path} HTTP/1.1\r\n".encode("latin-1") + self._head
        if payload is not None:
            head += b"Content-Type: application/json\r\nContent-Length: " + str(len(payload)).encode() + b"\r\n"
        elif method in ("POST", "PUT", "PATCH"):
            head += b"Content-Length: 0\r\n"
        conn.writer.write(head + b"\r\n" + (payload or b""))
        try:
            await conn.writer.drain()
            raw = await conn.reader.readuntil(b"\r\n\r\n")
        except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError) as e:
            if reused and not (isinstance(e, asyncio.IncompleteReadError) and e.partial):
                raise _StaleConnection() from None
            raise
        if len(raw) > _MAX_HEAD:
            raise ValueError("response head too large")
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ValueError(f"bad status line {lines[0][:64]!r}")
        status = int(parts[1])
        headers: Dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        conn_hdr = headers.get("connection", "").lower()
        keep = parts[0] == "HTTP/1.1" and "close" not in conn_hdr
        if headers.get("transfer-encoding", "").lower() == "chunked":
            data = await self._read_chunked(conn.reader)
        elif "content-length" in headers:
            n = int(headers["content-length"])
            if n > _core.MAX_RESPONSE_BYTES:
                raise ValueError("answer exceeds the size limit")
            data = await conn.reader.readexactly(n)
        else:
            data = await conn.reader.read(_core.MAX_RESPONSE_BYTES + 1)
            keep = False
            if len(data) > _core.MAX_RESPONSE_BYTES:
                raise ValueError("answer exceeds the size limit")
        return status, data, keep

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        out = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return bytes(out)
            if len(out) + size > _core.MAX_RESPONSE_BYTES:
                raise ValueError("answer exceeds the size limit")
            out += await reader.readexactly(size)
            await reader.readexactly(2)
