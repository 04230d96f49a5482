"""The answers of the decision API as Python values, and the client's two exception types."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Mapping, Optional

# The code of a decision the client made up because the sidecar could not answer (unreachable,
# timed out, or a 5xx), as in the Go client.
CODE_SIDECAR_UNAVAILABLE = "sidecar_unavailable"

_REASON_CLOSED = "Entitlement service unavailable; denied (fail closed)"
_REASON_OPEN = "Entitlement service unavailable; allowed (fail open)"


class TollgateError(Exception):
    """The API refused the request (4xx): retrying it unchanged will not help.

    ``code`` and ``message`` are the API's own (``{"error": {"code", "message"}}``); the
    message starts with the field at fault, e.g. ``quantity: must be >= 1, got -1``.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"tollgate: {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class SidecarUnavailableError(Exception):
    """The sidecar could not answer: unreachable, timed out, or a 5xx answer.

    Checks never raise it (they answer the fallback decision); the other calls do.
    ``status`` is the HTTP status, 0 when no answer arrived.
    """

    code = CODE_SIDECAR_UNAVAILABLE

    def __init__(self, op: str, status: int, cause: str) -> None:
        detail = f" (HTTP {status})" if status else ""
        super().__init__(f"tollgate {op}: sidecar unavailable{detail}: {cause}")
        self.op = op
        self.status = status
        self.cause = cause


@dataclasses.dataclass(frozen=True)
class Decision:
    """One answer of ``POST /v1/check``, field for field.

    ``limit`` and ``remaining`` are None when unlimited (or not a limit question);
    ``upgrade_to`` is None when no tier would allow the request; ``stale_mode`` is "" on fresh
    answers; ``replayed`` is True when a consume's idempotency key was seen before (nothing was
    counted); ``explain`` is the explanation of an ``explain=True`` check.
    """

    allow: bool
    code: str
    reason: str = ""
    limit: Optional[int] = None
    used: int = 0
    remaining: Optional[int] = None
    tier: str = ""
    status: str = ""
    upgrade_to: Optional[str] = None
    decision_id: str = ""
    stale: bool = False
    stale_mode: str = ""
    replayed: bool = False
    explain: Optional[Dict[str, Any]] = None

    @property
    def message(self) -> Optional[str]:
        """The model's message: None when allowed, else the reason."""
        return None if self.allow else self.reason

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Decision":
        return cls(
            allow=bool(d.get("allow", False)),
            code=str(d.get("code", "")),
            reason=str(d.get("reason", "")),
            limit=d.get("limit"),
            used=int(d.get("used") or 0),
            remaining=d.get("remaining"),
            tier=str(d.get("tier") or ""),
            status=str(d.get("status") or ""),
            upgrade_to=d.get("upgrade_to"),
            decision_id=str(d.get("decision_id") or ""),
            stale=bool(d.get("stale", False)),
            stale_mode=str(d.get("stale_mode") or ""),
            replayed=bool(d.get("replayed", False)),
            explain=d.get("explain"),
        )


def fallback_decision(fail_open: bool) -> Decision:
    """The decision a check answers when the sidecar cannot (the Go client's, exactly)."""
    return Decision(
        allow=fail_open,
        code=CODE_SIDECAR_UNAVAILABLE,
        reason=_REASON_OPEN if fail_open else _REASON_CLOSED,
    )


@dataclasses.dataclass(frozen=True)
class UsageResult:
    """The answer of ``POST /v1/usage``: the period's order count after the increment."""

    vendor_id: str
    metric: str
    period: str
    value: int
    applied: bool  # False: the idempotency key was seen before, nothing was counted

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "UsageResult":
        return cls(
            vendor_id=str(d["vendor_id"]),
            metric=str(d["metric"]),
            period=str(d.get("period", "")),
            value=int(d["value"]),
            applied=bool(d["applied"]),
        )


@dataclasses.dataclass(frozen=True)
class UsageFacts:
    """The answer of ``PUT /v1/vendors/{id}/usage``: the vendor's usage after the report."""

    vendor_id: str
    usage: Dict[str, Any]
    revision: int

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "UsageFacts":
        return cls(vendor_id=str(d["vendor_id"]), usage=dict(d.get("usage") or {}), revision=int(d["revision"]))


@dataclasses.dataclass(frozen=True)
class Vendor:
    """``GET /v1/vendors/{id}``: the whole state the policy sees about one vendor."""

    vendor_id: str
    subscription: Dict[str, Any]
    tier: Optional[Dict[str, Any]]
    period: str
    orders_used: int
    effective_limits: Dict[str, Any]  # None values mean unlimited
    usage: Dict[str, Any]
    add_ons: List[Dict[str, Any]]
    revision: int
    policy_revision: str
    raw: Dict[str, Any] = dataclasses.field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Vendor":
        return cls(
            vendor_id=str(d["vendor_id"]),
            subscription=dict(d.get("subscription") or {}),
            tier=d.get("tier"),
            period=str(d.get("period") or ""),
            orders_used=int(d.get("orders_used") or 0),
            effective_limits=dict(d.get("effective_limits") or {}),
            usage=dict(d.get("usage") or {}),
            add_ons=list(d.get("add_ons") or []),
            revision=int(d.get("revision") or 0),
            policy_revision=str(d.get("policy_revision") or ""),
            raw=dict(d),
        )
