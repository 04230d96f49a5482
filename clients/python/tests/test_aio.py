"""AsyncClient against a real sidecar and failing ones: the same answers as Client."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import unittest

from tollgate_client import CODE_SIDECAR_UNAVAILABLE, AsyncClient, Decision, SidecarUnavailableError, TollgateError

from .sidecar import Drip, Failing, SharedSidecar, Silent, closed_port
from .test_client import CLOSED, OPEN, ORDER_LIMIT_100


class AsyncSidecarTest(SharedSidecar, unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        # Generous: the machine running the tests is shared; the timeout tests use their own.
        self.client = AsyncClient(self.sidecar.url, timeout=30)

    async def asyncTearDown(self) -> None:
        await self.client.aclose()

    async def test_model_methods(self) -> None:
        c = self.client
        self.assertEqual(await c.can_create_order("demo-essential"), (True, None))
        self.assertEqual(await c.can_create_order("demo-essential-at-limit"), (False, ORDER_LIMIT_100))
        self.assertEqual(await c.can_create_order("demo-expired"), (False, "Subscription is not active"))
        self.assertEqual(await c.can_add_product("demo-essential", 200),
                         (False, "Product limit reached (200 products). Upgrade to add more."))
        self.assertEqual(await c.can_add_team_member("demo-essential", 1),
                         (False, "Team member limit reached (1 members). Upgrade to add more."))
        self.assertEqual(await c.can_add_team_member("demo-essential", 0), (True, None))
        self.assertIs(await c.has_feature("demo-business", "api_access"), True)
        self.assertIs(await c.has_feature("demo-essential", "api_access"), False)

    async def test_api(self) -> None:
        c = self.client
        d = await c.check("demo-essential-at-limit", "order.create")
        self.assertEqual(dataclasses.replace(d, decision_id=""), Decision(
            allow=False, code="limit_reached", reason=ORDER_LIMIT_100, limit=100, used=100, remaining=0,
            tier="essential", status="active", upgrade_to="professional"))
        first = await c.consume_order("demo-essential-near-limit", "aio-1")
        self.assertEqual((first.allow, first.used, first.replayed), (True, 99, False))
        self.assertEqual(await c.consume_order("demo-essential-near-limit", "aio-1"), dataclasses.replace(first, replayed=True))
        got = await c.check_batch([{"vendor_id": "demo-essential", "action": "feature.use", "feature": "api_access"},
                                   {"vendor_id": "demo-essential", "action": "order.create"}])
        self.assertEqual([(x.allow, x.code) for x in got], [(False, "feature_missing"), (True, "ok")])
        r = await c.report_usage("demo-professional", 5, idempotency_key="aio-usage")
        self.assertEqual((r.value, r.applied), (255, True))
        f = await c.report_usage_facts("demo-trial", products=9)
        v = await c.vendor("demo-trial")
        self.assertEqual((f.usage["products"], v.usage["products"], v.revision), (9, 9, f.revision))
        self.assertEqual(len((await c.tiers())["tiers"]), 4)

    async def test_bad_input_raises_the_api_error(self) -> None:
        with self.assertRaises(TollgateError) as cm:
            await self.client.check("demo-essential", "order.create", quantity=-1)
        self.assertEqual((cm.exception.status, cm.exception.code, cm.exception.message),
                         (400, "invalid", "quantity: must be >= 1, got -1"))
        with self.assertRaises(TollgateError) as cm:
            await self.client.vendor("demo-nobody")
        self.assertEqual((cm.exception.status, cm.exception.code), (404, "not_found"))

    async def test_concurrent_calls_share_the_client(self) -> None:
        # demo-enterprise: 4200 of a custom 5000 orders. 64 concurrent checks, connections kept.
        results = await asyncio.gather(*(self.client.check("demo-enterprise", "order.create") for _ in range(64)))
        self.assertTrue(all(d.allow and d.used == 4200 and d.limit == 5000 for d in results))
        idle = len(self.client._idle)
        self.assertGreaterEqual(idle, 1)
        self.assertLessEqual(idle, 32)
        conn = self.client._idle[-1][0]
        await self.client.can_create_order("demo-essential")
        self.assertIs(self.client._idle[-1][0], conn)


class AsyncFallbackTest(unittest.IsolatedAsyncioTestCase):
    async def assert_fallback(self, url: str, fail_open: bool, timeout: float = 0.1) -> None:
        want = Decision(allow=fail_open, code=CODE_SIDECAR_UNAVAILABLE, reason=OPEN if fail_open else CLOSED)
        async with AsyncClient(url, timeout=timeout, fail_open=fail_open) as c:
            self.assertEqual(await c.check("1", "order.create"), want)
            self.assertEqual(await c.check_batch([{"vendor_id": "1", "action": "order.create"}]), [want])
            self.assertEqual(await c.can_create_order("1"), (True, None) if fail_open else (False, CLOSED))
            self.assertIs(await c.has_feature("1", "api_access"), fail_open)
            with self.assertRaises(SidecarUnavailableError):
                await c.vendor("1")

    async def test_unreachable(self) -> None:
        for fail_open in (False, True):
            with self.assertLogs("tollgate_client", "WARNING") as logs:
                await self.assert_fallback(closed_port(), fail_open)
            self.assertIn("tollgate check: sidecar unavailable: ConnectionRefusedError", logs.output[0])

    async def test_5xx(self) -> None:
        srv = Failing(503)
        self.addCleanup(srv.stop)
        for fail_open in (False, True):
            with self.assertLogs("tollgate_client", "WARNING"):
                await self.assert_fallback(srv.url, fail_open, timeout=5)

    async def test_timeout_bounds_a_hung_sidecar(self) -> None:
        hung = Silent()
        self.addCleanup(hung.stop)
        slow = Failing(200, delay=10, body=b'{"allow":true,"code":"ok"}')
        self.addCleanup(slow.stop)
        drip = Drip()
        self.addCleanup(drip.stop)
        for url in (hung.url, slow.url, drip.url):
            async with AsyncClient(url, timeout=0.2) as c:
                start = time.monotonic()
                with self.assertLogs("tollgate_client", "WARNING") as logs:
                    self.assertEqual(await c.can_create_order("1"), (False, CLOSED))
                self.assertLess(time.monotonic() - start, 3)
                self.assertIn("no answer within 0.2s", logs.output[0])

    async def test_stale_keepalive_connection_is_retried(self) -> None:
        srv = Failing(200, body=b'{"allow":true,"code":"ok","reason":"","used":3}', close_after=True)
        self.addCleanup(srv.stop)
        async with AsyncClient(srv.url, timeout=5) as c:
            for _ in range(3):
                self.assertEqual(await c.check("1", "order.create"), Decision(allow=True, code="ok", used=3))
                await asyncio.sleep(0.05)
        self.assertEqual(len(srv.requests), 3)


if __name__ == "__main__":
    unittest.main()
