/**
 * `cellio run` as a real process (the built CLI) under a stand-in for
 * systemd: NOTIFY_SOCKET is a real datagram socket this test reads,
 * WATCHDOG_USEC asks for pings. READY=1 comes only after the first cycle;
 * WATCHDOG=1 stops while the control loop is stalled although the event loop
 * runs on (its HTTP endpoint still answers), and resumes with the loop;
 * STOPPING=1 on SIGTERM.
 *
 * The stall: STALL_SEAM below, written to a file and preloaded with
 * `node --import`, holds the loop's tick timers on SIGUSR2 (no change to
 * cellio's code for the test).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { SimDevice, Teardown, builtCli, sleep, waitFor } from "../integration/helpers.js";
import { hasSocat } from "../helpers/pty.js";
import { NotifySocket } from "./notify-socket.js";

const t = new Teardown();
afterEach(() => t.run());

/**
 * Test seam, preloaded into the built cellio CLI with `node --import`: it can
 * hold the control loop's ticks while the event loop runs on (what a lost tick
 * timer or a cycle that never finishes looks like from outside). SIGUSR2
 * toggles the hold; CELLIO_TEST_STALL=1 starts held. Held ticks run on release.
 * CELLIO_TEST_SCHEDULER_MODULE is the built precise-scheduler.js, the very
 * module the CLI loads, so this patches the class the loop uses.
 */
const STALL_SEAM = `
const { PreciseScheduler } = await import(process.env.CELLIO_TEST_SCHEDULER_MODULE);
const schedule = PreciseScheduler.prototype.schedule;
let held = process.env.CELLIO_TEST_STALL === "1";
const waiting = [];
PreciseScheduler.prototype.schedule = function (work, delay, state) {
  if (!held) return schedule.call(this, work, delay, state);
  waiting.push([this, work, delay, state]);
  return { closed: false, unsubscribe() {} };
};
process.on("SIGUSR2", () => {
  held = !held;
  process.stderr.write("stall-loop: ticks " + (held ? "held" : "released") + "\\n");
  if (!held) for (const [s, work, delay, state] of waiting.splice(0)) schedule.call(s, work, delay, state);
});
`;
const WATCHDOG_USEC = 600_000; // pings checked every 300 ms

let cli = "";

interface Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
  /** The HTTP port from the "serving /metrics" log line. */
  httpPort(): number | undefined;
}

function cellYaml(dev: SimDevice): string {
  return `
version: 1
cell: { id: sd-notify-test }
cycle: { period_ms: 20, input_budget_ms: 8, output_budget_ms: 8 }
http: { port: 0 }
devices:
  a:
    protocol: modbus-tcp
    host: 127.0.0.1
    port: ${dev.port}
    timeout_ms: 200
    points:
      go:  { address: "di:0" }
      run: { address: "coil:0", direction: output, safe: false }
logic:
  a.run: "a.go"
`;
}

async function start(sock: NotifySocket, opts: { stalled: boolean }): Promise<Proc> {
  const dev = await SimDevice.start(t);
  dev.bank.setBit("di", 0, true);
  const dir = await mkdtemp(path.join(os.tmpdir(), "cellio-sd-"));
  t.add(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "cell.yaml");
  await writeFile(file, cellYaml(dev));
  const seam = path.join(dir, "stall-loop.mjs");
  await writeFile(seam, STALL_SEAM);
  const child = spawn(process.execPath, ["--import", pathToFileURL(seam).href, cli, "run", "--config", file, "--summary-every", "0"], {
    cwd: dir,
    env: {
      ...process.env,
      CELLIO_LOG_PRETTY: "0",
      NOTIFY_SOCKET: sock.address,
      WATCHDOG_USEC: String(WATCHDOG_USEC),
      CELLIO_TEST_SCHEDULER_MODULE: pathToFileURL(path.join(path.dirname(cli), "loop", "precise-scheduler.js")).href,
      CELLIO_TEST_STALL: opts.stalled ? "1" : "0",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  t.add(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
  });
  const httpPort = (): number | undefined => {
    const m = /"port":(\d+)[^\n]*serving \/metrics/.exec(out);
    return m ? Number(m[1]) : undefined;
  };
  return { child, exited, output: () => out, httpPort };
}

async function get(p: Proc, route: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${p.httpPort()}${route}`);
  return { status: res.status, body: await res.text() };
}

describe.skipIf(!hasSocat())("cellio run under a systemd notify socket", () => {
  beforeAll(async () => {
    cli = await builtCli();
  }, 180_000);

  it("sends READY=1 only after the first cycle has run", async () => {
    const sock = await NotifySocket.file();
    t.add(() => sock.close());
    const p = await start(sock, { stalled: true });
    // Up, devices started, HTTP listening, the helper talking, but no cycle yet.
    await waitFor(() => p.httpPort() !== undefined && sock.has("STATUS=starting: loading devices"), 20_000, () => `start-up; output:\n${p.output()}`);
    await sleep(1500);
    expect(sock.has("READY=1"), sock.text()).toBe(false);
    const h = await get(p, "/healthz");
    expect(h.status).toBe(503);
    expect(JSON.parse(h.body)).toMatchObject({ status: "starting" });

    p.child.kill("SIGUSR2"); // release the loop
    await waitFor(() => sock.has("READY=1"), 10_000, () => `READY=1; got:\n${sock.text()}\noutput:\n${p.output()}`);
    const m = await get(p, "/metrics");
    expect(Number(/^cellio_cycles_total (\d+)$/m.exec(m.body)?.[1])).toBeGreaterThanOrEqual(1);
    expect(sock.lines.find((l) => l.line.startsWith("STATUS=running"))?.line).toBe("STATUS=running: 1 device, cycle 20 ms");
  });

  it("withholds WATCHDOG=1 while the loop is stalled and the event loop alive, resumes after, and says STOPPING=1 on SIGTERM", async () => {
    const sock = await NotifySocket.file();
    t.add(() => sock.close());
    const p = await start(sock, { stalled: false });
    await waitFor(() => sock.has("READY=1") && sock.count("WATCHDOG=1") >= 3, 20_000, () => `READY and pings; got:\n${sock.text()}\noutput:\n${p.output()}`);

    p.child.kill("SIGUSR2"); // hold the loop's ticks
    await waitFor(() => p.output().includes("stall-loop: ticks held"), 5000, "the hold");
    // The event loop runs: the HTTP endpoint answers, and says the loop is stalled.
    await waitFor(() => sock.lines.some((l) => l.line.startsWith("STATUS=control loop stalled")), 5000, () => `the stall status; got:\n${sock.text()}`);
    const h = await get(p, "/healthz").catch(() => ({ status: 0, body: "" }));
    await sleep(1000); // a check that saw the last cycles before the hold may still ping: let it pass
    const pingsAtStall = sock.count("WATCHDOG=1");
    await sleep(2000); // more than six ping intervals
    expect(sock.count("WATCHDOG=1"), sock.text()).toBe(pingsAtStall);
    expect(p.output()).toContain("control loop stalled: watchdog pings withheld");
    const h2 = await get(p, "/healthz");
    expect(h2.status, h2.body).toBe(503);
    expect(JSON.parse(h2.body)).toMatchObject({ status: "stalled" });
    expect([200, 503]).toContain(h.status); // answered while stalled (either side of the 1 s health limit)

    p.child.kill("SIGUSR2"); // release
    await waitFor(() => sock.count("WATCHDOG=1") >= pingsAtStall + 2, 10_000, () => `pings to resume; got:\n${sock.text()}`);
    expect((await get(p, "/healthz")).status).toBe(200);

    p.child.kill("SIGTERM");
    const { code, signal } = await p.exited;
    expect({ code, signal }, p.output()).toEqual({ code: 0, signal: null });
    await waitFor(() => sock.has("STOPPING=1"), 3000, () => `STOPPING=1; got:\n${sock.text()}`);
    const stoppingAt = sock.times("STOPPING=1")[0]!;
    expect(sock.times("WATCHDOG=1").every((at) => at <= stoppingAt)).toBe(true);
  });
});
