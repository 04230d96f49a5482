// OPA's TypeScript SDK, used as an app that asked an OPA sidecar would use it, sends only the
// request: tollgate answers tollgate/decision exactly as POST /v1/check, tollgate/allow with
// its allow.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { OPAClient } from "@open-policy-agent/opa";
import { startSidecar } from "./sidecar.mjs";

let sidecar;
let opa;

before(async () => {
  sidecar = await startSidecar();
  opa = new OPAClient(sidecar.url);
});

after(async () => {
  await sidecar?.stop();
});

async function check(request) {
  const r = await fetch(`${sidecar.url}/v1/check`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(request),
  });
  assert.equal(r.status, 200);
  return r.json();
}

function withoutID({ decision_id, ...rest }) {
  assert.equal(typeof decision_id, "string");
  assert.ok(decision_id.length > 0);
  return rest;
}

const cases = [
  {
    request: { vendor_id: "demo-essential", action: "order.create" },
    want: { allow: true, code: "ok", reason: "", limit: 100, used: 12, remaining: 88, tier: "essential", status: "active", upgrade_to: null, stale: false },
  },
  {
    request: { vendor_id: "demo-essential-at-limit", action: "order.create" },
    want: {
      allow: false, code: "limit_reached", reason: "Monthly order limit reached (100 orders). Upgrade to continue.",
      limit: 100, used: 100, remaining: 0, tier: "essential", status: "active", upgrade_to: "professional", stale: false,
    },
  },
  {
    request: { vendor_id: "demo-essential", action: "product.add", count: 200 },
    want: {
      allow: false, code: "limit_reached", reason: "Product limit reached (200 products). Upgrade to add more.",
      limit: 200, used: 200, remaining: 0, tier: "essential", status: "active", upgrade_to: "professional", stale: false,
    },
  },
  {
    request: { vendor_id: "demo-business", action: "feature.use", feature: "api_access" },
    want: { allow: true, code: "ok", reason: "", limit: null, used: 0, remaining: null, tier: "business", status: "active", upgrade_to: null, stale: false },
  },
  {
    request: { vendor_id: "demo-expired", action: "order.create" },
    want: { allow: false, code: "inactive", reason: "Subscription is not active", limit: null, used: 0, remaining: null, tier: "essential", status: "expired", upgrade_to: null, stale: false },
  },
];

for (const { request, want } of cases) {
  test(`tollgate/decision ${request.vendor_id} ${request.action}`, async () => {
    const got = await opa.evaluate("tollgate/decision", request);
    assert.deepEqual(withoutID(got), want);
    assert.deepEqual(withoutID(got), withoutID(await check(request)));
  });

  test(`tollgate/allow ${request.vendor_id} ${request.action}`, async () => {
    assert.equal(await opa.evaluate("tollgate/allow", request), want.allow);
  });
}

test("an integer vendor id, as the model's ids are", async () => {
  const got = await opa.evaluate("tollgate/decision", { vendor_id: 42, action: "order.create" });
  assert.equal(got.code, "unknown_vendor");
  assert.equal(got.allow, false);
});

test("a bad request is OPA's 400, naming the field under input", async () => {
  await assert.rejects(opa.evaluate("tollgate/decision", { vendor_id: "demo-essential" }), (err) => {
    assert.match(String(err?.message ?? err), /input\.action: is required/);
    return true;
  });
  await assert.rejects(opa.evaluate("tollgate/allow", { vendor_id: "demo-essential", action: "order.create", qty: 1 }), (err) => {
    assert.match(String(err?.message ?? err), /input: unknown field "qty"/);
    return true;
  });
});

test("the whole input document, as explain shows it, is evaluated as given (replay)", async () => {
  const request = { vendor_id: "demo-essential-at-limit", action: "order.create" };
  const { explain, decision_id, stale, ...decision } = await check({ ...request, explain: true });
  assert.ok(explain.input.request && "vendor" in explain.input);
  assert.deepEqual(await opa.evaluate("tollgate/decision", explain.input), decision);
  assert.equal(await opa.evaluate("tollgate/allow", explain.input), false);
});
