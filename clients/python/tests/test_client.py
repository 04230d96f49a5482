"""Client against a real sidecar (`tollgate serve --demo`) and against failing ones."""

from __future__ import annotations

import dataclasses
import threading
import time
import unittest

from tollgate_client import (
    CODE_SIDECAR_UNAVAILABLE,
    Client,
    Decision,
    SidecarUnavailableError,
    TollgateError,
)

from .sidecar import Drip, Failing, SharedSidecar, Silent, closed_port

ORDER_LIMIT_100 = "Monthly order limit reached (100 orders). Upgrade to continue."
CLOSED = "Entitlement service unavailable; denied (fail closed)"
OPEN = "Entitlement service unavailable; allowed (fail open)"


class SidecarTest(SharedSidecar, unittest.TestCase):
    def setUp(self) -> None:
        # Generous: the machine running the tests is shared; the timeout tests use their own.
        self.client = Client(self.sidecar.url, timeout=30)
        self.addCleanup(self.client.close)


class ModelMethodsTest(SidecarTest):
    """The model's methods answer what the model answered, message None when allowed."""

    def test_can_create_order(self) -> None:
        for vendor, want in [
            ("demo-essential", (True, None)),
            ("demo-essential-at-limit", (False, ORDER_LIMIT_100)),
            ("demo-expired", (False, "Subscription is not active")),
            ("demo-cancelled-ended", (False, "Subscription is not active")),
            ("demo-past-due", (True, None)),
        ]:
            with self.subTest(vendor=vendor):
                self.assertEqual(self.client.can_create_order(vendor), want)

    def test_can_add_product(self) -> None:
        self.assertEqual(self.client.can_add_product("demo-essential", 199), (True, None))
        self.assertEqual(self.client.can_add_product("demo-essential", 200),
                         (False, "Product limit reached (200 products). Upgrade to add more."))
        self.assertEqual(self.client.can_add_product("demo-professional", 100000), (True, None))

    def test_can_add_team_member(self) -> None:
        self.assertEqual(self.client.can_add_team_member("demo-essential", 0), (True, None))
        self.assertEqual(self.client.can_add_team_member("demo-essential", 1),
                         (False, "Team member limit reached (1 members). Upgrade to add more."))
        self.assertEqual(self.client.can_add_team_member("demo-business", 9), (True, None))

    def test_has_feature(self) -> None:
        self.assertIs(self.client.has_feature("demo-business", "api_access"), True)
        self.assertIs(self.client.has_feature("demo-essential", "api_access"), False)
        self.assertIs(self.client.has_feature("demo-expired", "letzshop_sync"), False)


class APITest(SidecarTest):
    def test_check_has_every_field(self) -> None:
        d = self.client.check("demo-essential-at-limit", "order.create")
        self.assertEqual(dataclasses.replace(d, decision_id=""), Decision(
            allow=False, code="limit_reached", reason=ORDER_LIMIT_100, limit=100, used=100, remaining=0,
            tier="essential", status="active", upgrade_to="professional"))
        self.assertTrue(d.decision_id)
        self.assertEqual(d.message, ORDER_LIMIT_100)

    def test_check_fields_and_explain(self) -> None:
        d = self.client.check("demo-essential", "order.create", quantity=88, explain=True)
        self.assertEqual((d.allow, d.code, d.used, d.remaining), (True, "ok", 12, 88))
        self.assertIsNotNone(d.explain)
        self.assertEqual(d.explain["input"]["request"]["quantity"], 88)
        d = self.client.check("demo-essential", "order.create", quantity=89, platform=None)
        self.assertEqual((d.allow, d.code), (False, "limit_reached"))
        self.assertIsNone(d.explain)
        self.assertEqual(self.client.check("demo-nobody", "order.create").code, "unknown_vendor")
        self.assertEqual(self.client.check("demo-essential", "spaceship.launch").code, "unknown_action")

    def test_consume_order(self) -> None:
        first = self.client.consume_order("demo-essential-near-limit", "order-1")
        self.assertEqual((first.allow, first.code, first.used, first.replayed), (True, "ok", 99, False))
        again = self.client.consume_order("demo-essential-near-limit", "order-1")
        self.assertEqual(again, dataclasses.replace(first, replayed=True))
        self.assertEqual(self.client.can_create_order("demo-essential-near-limit"), (False, ORDER_LIMIT_100))
        self.assertEqual(self.client.vendor("demo-essential-near-limit").orders_used, 100)

    def test_check_batch(self) -> None:
        got = self.client.check_batch([
            {"vendor_id": "demo-essential", "action": "feature.use", "feature": "invoice_lu"},
            {"vendor_id": "demo-essential", "action": "feature.use", "feature": "api_access"},
            {"vendor_id": "demo-expired", "action": "order.create", "quantity": None},
        ])
        self.assertEqual([(d.allow, d.code, d.reason) for d in got], [
            (True, "ok", ""),
            (False, "feature_missing", "Feature not available on your plan"),
            (False, "inactive", "Subscription is not active"),
        ])
        self.assertEqual(self.client.check_batch([]), [])
        with self.assertRaises(TollgateError) as cm:
            self.client.check_batch([{"vendor_id": "demo-essential", "action": "order.create"}, {"vendor_id": "x"}])
        self.assertEqual((cm.exception.status, cm.exception.code, cm.exception.message),
                         (400, "invalid", "checks[1].action: is required"))

    def test_report_usage(self) -> None:
        r = self.client.report_usage("demo-professional", 5, idempotency_key="import-7")
        self.assertEqual((r.vendor_id, r.metric, r.value, r.applied), ("demo-professional", "orders", 255, True))
        r = self.client.report_usage("demo-professional", 5, idempotency_key="import-7")
        self.assertEqual((r.value, r.applied), (255, False))
        self.assertEqual(self.client.check("demo-professional", "order.create").used, 255)

    def test_report_usage_facts(self) -> None:
        f = self.client.report_usage_facts("demo-trial", products=7, team_members=2)
        self.assertEqual((f.vendor_id, f.usage["products"], f.usage["team_members"]), ("demo-trial", 7, 2))
        v = self.client.vendor("demo-trial")
        self.assertEqual((v.usage["products"], v.revision), (7, f.revision))
        with self.assertRaises(TollgateError) as cm:
            self.client.report_usage_facts("demo-trial")
        self.assertEqual((cm.exception.status, cm.exception.code), (400, "invalid"))
        self.assertEqual(cm.exception.message, "products: at least one of products, team_members, cms_pages, cms_custom_pages, storage_bytes is required")

    def test_vendor(self) -> None:
        v = self.client.vendor("demo-essential")
        self.assertEqual((v.vendor_id, v.subscription["tier"], v.subscription["status"], v.orders_used),
                         ("demo-essential", "essential", "active", 12))
        self.assertEqual(v.tier["code"], "essential")
        self.assertEqual(v.effective_limits, {"orders": 100, "products": 200, "team_members": 1})
        self.assertTrue(v.policy_revision)
        with self.assertRaises(TollgateError) as cm:
            self.client.vendor("demo-nobody")
        self.assertEqual((cm.exception.status, cm.exception.code), (404, "not_found"))

    def test_tiers(self) -> None:
        self.assertEqual([t["code"] for t in self.client.tiers()["tiers"]],
                         ["essential", "professional", "business", "enterprise"])

    def test_bad_input_raises_the_api_error(self) -> None:
        for call, message in [
            (lambda: self.client.check("demo-essential", "order.create", quantity=-1), "quantity: must be >= 1, got -1"),
            (lambda: self.client.check("demo-essential", "order.create", qty=2), 'body: unknown field "qty"'),
            (lambda: self.client.check("", "order.create"), "vendor_id: is required"),
            (lambda: self.client.can_add_product("demo-essential", -3), "count: must be >= 0, got -3"),
            (lambda: self.client.check("demo-essential", "product.add", consume=True), "consume: is only valid for order.create"),
            (lambda: self.client.report_usage("demo-essential", -1), "delta"),
        ]:
            with self.subTest(message=message):
                with self.assertRaises(TollgateError) as cm:
                    call()
                self.assertEqual((cm.exception.status, cm.exception.code), (400, "invalid"))
                self.assertTrue(cm.exception.message.startswith(message), cm.exception.message)

    def test_keeps_one_connection_alive(self) -> None:
        for _ in range(20):
            self.client.can_create_order("demo-essential")
        idle = list(self.client._pool._idle)
        self.assertEqual(len(idle), 1)
        conn = idle[0][0]
        self.client.has_feature("demo-business", "api_access")
        self.assertIs(self.client._pool._idle[0][0], conn)

    def test_threads_share_a_client(self) -> None:
        # demo-business has 1999 of 2000 orders: of eight concurrent consumes exactly one wins.
        results = []
        lock = threading.Lock()

        def worker(i: int) -> None:
            mine = [self.client.consume_order("demo-business", f"thread-{i}")]
            for _ in range(25):
                mine.append(self.client.check("demo-enterprise", "order.create"))
                mine.append(self.client.has_feature("demo-business", "api_access"))
            with lock:
                results.append(mine)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(results), 8)
        consumes = [r[0] for r in results]
        self.assertEqual(sorted(d.allow for d in consumes), [False] * 7 + [True])
        self.assertEqual({d.reason for d in consumes if not d.allow},
                         {"Monthly order limit reached (2000 orders). Upgrade to continue."})
        for r in results:
            self.assertTrue(all(x is True for x in r[2::2]))
            self.assertTrue(all(d.allow and d.used == 4200 and d.limit == 5000 for d in r[1::2]))
        self.assertLessEqual(len(self.client._pool._idle), 8)


class FallbackTest(unittest.TestCase):
    """Unreachable, failing (5xx) or hung sidecars: checks fall back, other calls raise."""

    def client(self, url: str, **kwargs: object) -> Client:
        c = Client(url, **kwargs)  # type: ignore[arg-type]
        self.addCleanup(c.close)
        return c

    def assert_fallback(self, client: Client, fail_open: bool) -> None:
        want = Decision(allow=fail_open, code=CODE_SIDECAR_UNAVAILABLE, reason=OPEN if fail_open else CLOSED)
        self.assertEqual(client.check("demo-essential", "order.create"), want)
        self.assertEqual(client.consume_order("demo-essential", "k"), want)
        self.assertEqual(client.check_batch([{"vendor_id": "1", "action": "order.create"}] * 2), [want, want])
        self.assertEqual(client.can_create_order("demo-essential"), (True, None) if fail_open else (False, CLOSED))
        self.assertEqual(client.can_add_product("demo-essential", 1), (True, None) if fail_open else (False, CLOSED))
        self.assertEqual(client.can_add_team_member("demo-essential", 1), (True, None) if fail_open else (False, CLOSED))
        self.assertIs(client.has_feature("demo-essential", "api_access"), fail_open)
        for call in (lambda: client.vendor("demo-essential"), lambda: client.report_usage("demo-essential"),
                     lambda: client.report_usage_facts("demo-essential", products=1), client.tiers):
            with self.assertRaises(SidecarUnavailableError) as cm:
                call()
            self.assertEqual(cm.exception.code, CODE_SIDECAR_UNAVAILABLE)

    def test_unreachable(self) -> None:
        url = closed_port()
        for fail_open in (False, True):
            with self.subTest(fail_open=fail_open), self.assertLogs("tollgate_client", "WARNING") as logs:
                self.assert_fallback(self.client(url, fail_open=fail_open), fail_open)
            self.assertIn("sidecar unavailable: ConnectionRefusedError", logs.output[0])

    def test_5xx(self) -> None:
        srv = Failing(503)
        self.addCleanup(srv.stop)
        for fail_open in (False, True):
            with self.subTest(fail_open=fail_open), self.assertLogs("tollgate_client", "WARNING"):
                self.assert_fallback(self.client(srv.url, fail_open=fail_open), fail_open)
        with self.assertRaises(SidecarUnavailableError) as cm:
            self.client(srv.url).vendor("1")
        self.assertEqual(cm.exception.status, 503)
        self.assertIn("unavailable: store: not durable", str(cm.exception))

    def test_500_not_our_shape(self) -> None:
        srv = Failing(502, body=b"<html>bad gateway</html>")
        self.addCleanup(srv.stop)
        with self.assertLogs("tollgate_client", "WARNING"):
            self.assertEqual(self.client(srv.url).can_create_order("1"), (False, CLOSED))

    def test_4xx_from_elsewhere_is_an_error_not_a_fallback(self) -> None:
        srv = Failing(404, body=b"no such page")
        self.addCleanup(srv.stop)
        with self.assertRaises(TollgateError) as cm:
            self.client(srv.url).check("1", "order.create")
        self.assertEqual((cm.exception.status, cm.exception.code, cm.exception.message), (404, "Not Found", "no such page"))

    def test_timeout_bounds_a_hung_sidecar(self) -> None:
        hung = Silent()
        self.addCleanup(hung.stop)
        slow = Failing(200, delay=10, body=b'{"allow":true,"code":"ok"}')
        self.addCleanup(slow.stop)
        drip = Drip()
        self.addCleanup(drip.stop)
        for url in (hung.url, slow.url, drip.url):
            with self.subTest(url=url), self.assertLogs("tollgate_client", "WARNING") as logs:
                client = self.client(url, timeout=0.2)
                start = time.monotonic()
                self.assertEqual(client.can_create_order("demo-essential"), (False, CLOSED))
                # The bound, with room for a loaded machine; the server would take 10 s or forever.
                self.assertLess(time.monotonic() - start, 3)
                self.assertIn("no answer within 0.2s", logs.output[0])

    def test_stale_keepalive_connection_is_retried(self) -> None:
        # The server hangs up after each answer without saying so; the pooled connection is dead
        # by the next call, which must go out again on a new one rather than fail.
        srv = Failing(200, body=b'{"allow":true,"code":"ok","reason":"","used":3}', close_after=True)
        self.addCleanup(srv.stop)
        client = self.client(srv.url, timeout=5)
        for _ in range(3):
            self.assertEqual(client.check("1", "order.create"), Decision(allow=True, code="ok", used=3))
            time.sleep(0.05)  # let the hang-up arrive
        self.assertEqual(len(srv.requests), 3)

    def test_bad_base_url(self) -> None:
        for url in ("https://127.0.0.1:8181", "127.0.0.1:8181", "http://"):
            with self.subTest(url=url), self.assertRaises(ValueError):
                Client(url)
        with self.assertRaises(ValueError):
            Client(timeout=0)


if __name__ == "__main__":
    unittest.main()
