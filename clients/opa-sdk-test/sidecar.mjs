// A real tollgate sidecar for the test: $TOLLGATE_URL when set (a running `serve --demo`), else
// `tollgate serve --demo` started on free loopback ports from $TOLLGATE_BIN, or built from this
// checkout with `go build -o` into a temporary directory.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.on("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

export async function startSidecar() {
  if (process.env.TOLLGATE_URL) {
    return { url: process.env.TOLLGATE_URL.replace(/\/$/, ""), stop: async () => {} };
  }
  const tmp = mkdtempSync(join(tmpdir(), "tollgate-opa-sdk-"));
  let bin = process.env.TOLLGATE_BIN;
  if (!bin) {
    bin = join(tmp, "tollgate");
    execFileSync("go", ["build", "-o", bin, "./cmd/tollgate"], { cwd: repo, stdio: "inherit" });
  }
  const [api, webhook, ops] = [await freePort(), await freePort(), await freePort()];
  let output = "";
  const proc = spawn(bin, ["serve", "--demo", "--data-dir", join(tmp, "data"),
    "--listen", `127.0.0.1:${api}`, "--webhook-listen", `127.0.0.1:${webhook}`,
    "--ops-listen", `127.0.0.1:${ops}`, "--log-level", "warn"], { stdio: ["ignore", "pipe", "pipe"] });
  proc.stdout.on("data", (b) => { output += b; });
  proc.stderr.on("data", (b) => { output += b; });
  const exited = new Promise((ok) => proc.on("exit", ok));
  const stop = async () => {
    if (proc.exitCode === null) proc.kill("SIGTERM");
    await exited;
    rmSync(tmp, { recursive: true, force: true });
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) {
      await stop();
      throw new Error(`tollgate exited with ${proc.exitCode}: ${output.slice(-4000)}`);
    }
    try {
      const r = await fetch(`http://127.0.0.1:${ops}/health/ready`);
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`tollgate not ready within 60s: ${output.slice(-4000)}`);
    }
    await new Promise((ok) => setTimeout(ok, 50));
  }
  return { url: `http://127.0.0.1:${api}`, stop };
}
