"""Python client for the tollgate entitlement sidecar.

The subscription model's own methods (can_create_order, can_add_product, can_add_team_member,
has_feature) with the model's answers, and the whole decision API, over keep-alive HTTP to the
sidecar on loopback, each call bounded by a timeout, with a chosen fallback when the sidecar
cannot answer. Standard library only.
"""

from ._aio import AsyncClient
from ._client import Client
from ._core import VERSION as __version__
from ._types import (
    CODE_SIDECAR_UNAVAILABLE,
    Decision,
    SidecarUnavailableError,
    TollgateError,
    UsageFacts,
    UsageResult,
    Vendor,
)

__all__ = [
    "AsyncClient",
    "Client",
    "CODE_SIDECAR_UNAVAILABLE",
    "Decision",
    "SidecarUnavailableError",
    "TollgateError",
    "UsageFacts",
    "UsageResult",
    "Vendor",
    "__version__",
]
