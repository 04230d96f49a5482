"""What the sync and async clients share: requests as bytes, answers as values."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ._types import Decision, SidecarUnavailableError, TollgateError

VERSION = "0.1.0"
USER_AGENT = "tollgate-python-client/" + VERSION

# The longest answer read: a misbehaving endpoint cannot make the client buffer without limit.
MAX_RESPONSE_BYTES = 16 << 20

VendorIDLike = Union[str, int]

ACTION_ORDER_CREATE = "order.create"
ACTION_PRODUCT_ADD = "product.add"
ACTION_TEAM_MEMBER_ADD = "team_member.add"
ACTION_FEATURE_USE = "feature.use"


def parse_base_url(base_url: str) -> Tuple[str, int, str]:
    """Returns host, port and path prefix of an http:// base URL."""
    u = urllib.parse.urlsplit(base_url.rstrip("/"))
    if u.scheme != "http" or not u.hostname:
        raise ValueError(f"tollgate client: base URL {base_url!r}: must be http://host[:port] (the sidecar listens on loopback)")
    if u.query or u.fragment:
        raise ValueError(f"tollgate client: base URL {base_url!r}: must not have a query or fragment")
    return u.hostname, u.port or 80, u.path


def encode(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def check_body(vendor_id: VendorIDLike, action: str, fields: Mapping[str, Any]) -> Dict[str, Any]:
    """The body of POST /v1/check. A field set to None is left out (absent). Unknown fields are
    sent as given: the API refuses them by name, which is better than dropping them here."""
    body: Dict[str, Any] = {"vendor_id": vendor_id, "action": action}
    for k, v in fields.items():
        if v is not None:
            body[k] = v
    return body


def vendor_path(vendor_id: VendorIDLike, suffix: str = "") -> str:
    return "/v1/vendors/" + urllib.parse.quote(str(vendor_id), safe="") + suffix


def interpret(op: str, status: int, data: bytes) -> Any:
    """Turns an HTTP answer into its JSON value. 4xx raise TollgateError; 5xx and an answer that
    is not JSON raise SidecarUnavailableError (the sidecar did not answer the question)."""
    if status >= 500:
        raise SidecarUnavailableError(op, status, _error_text(status, data))
    if status >= 300:
        code, message = _error_fields(status, data)
        raise TollgateError(status, code, message)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise SidecarUnavailableError(op, status, f"answer is not JSON: {e}") from None


def _error_fields(status: int, data: bytes) -> Tuple[str, str]:
    try:
        err = json.loads(data.decode("utf-8"))["error"]
        code, message = err["code"], err["message"]
        if isinstance(code, str) and code and isinstance(message, str):
            return code, message
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        pass
    # Not our error shape (a proxy, another server): keep what it said, bounded.
    from http import HTTPStatus

    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = str(status)
    return phrase, data[:512].decode("utf-8", "replace").strip()


def _error_text(status: int, data: bytes) -> str:
    code, message = _error_fields(status, data)
    return f"{code}: {message}" if message else code


def batch_results(answer: Mapping[str, Any]) -> List[Decision]:
    """The decisions of POST /v1/check/batch, in request order. An entry whose evaluation failed
    ({"error": {...}}) is a deny carrying the error's code and message."""
    out: List[Decision] = []
    for r in answer.get("results") or []:
        err = r.get("error") if isinstance(r, dict) else None
        if err:
            out.append(Decision(allow=False, code=str(err.get("code", "")), reason=str(err.get("message", ""))))
        else:
            out.append(Decision.from_json(r))
    return out


def batch_body(checks: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    return {"checks": [{k: v for k, v in c.items() if v is not None} for c in checks]}


def usage_body(vendor_id: VendorIDLike, delta: int, idempotency_key: Optional[str], metric: str) -> Dict[str, Any]:
    body: Dict[str, Any] = {"vendor_id": vendor_id, "metric": metric, "delta": delta}
    if idempotency_key:
        body["idempotency_key"] = idempotency_key
    return body


def usage_facts_body(**counts: Optional[int]) -> Dict[str, Any]:
    return {k: v for k, v in counts.items() if v is not None}


def model_answer(d: Decision) -> Tuple[bool, Optional[str]]:
    """The model's (allowed, message) pair: message None when allowed."""
    return d.allow, d.message
