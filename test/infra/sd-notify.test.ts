/**
 * SdNotifier against a real AF_UNIX datagram socket (socat): messages
 * arrive, the abstract namespace works, nothing is spawned without
 * NOTIFY_SOCKET, and a helper that dies is respawned without harm.
 */
import { afterEach, describe, expect, it } from "vitest";
import { SdNotifier, formatNotification, socatAddress } from "../../src/infra/sd-notify.js";
import { silentLogger } from "../../src/infra/logger.js";
import { hasSocat } from "../helpers/pty.js";
import { Teardown, waitFor } from "../integration/helpers.js";
import { NotifySocket } from "../systemd/notify-socket.js";

const t = new Teardown();
afterEach(() => t.run());

function notifier(env: NodeJS.ProcessEnv, extra: { command?: string } = {}): SdNotifier {
  const n = new SdNotifier({ log: silentLogger(), env, minBackoffMs: 50, maxBackoffMs: 200, ...extra });
  t.add(() => n.close());
  return n;
}

async function socket(kind: "file" | "abstract"): Promise<NotifySocket> {
  const s = kind === "file" ? await NotifySocket.file() : await NotifySocket.abstract();
  t.add(() => s.close());
  return s;
}

describe("socatAddress and formatNotification", () => {
  it("maps a path and an @abstract name, and refuses what it cannot pass on", () => {
    expect(socatAddress("/run/systemd/notify")).toEqual({ ok: true, address: "UNIX-SENDTO:/run/systemd/notify" });
    expect(socatAddress("@cellio/notify")).toEqual({ ok: true, address: "ABSTRACT-SENDTO:cellio/notify" });
    expect(socatAddress("relative.sock").ok).toBe(false);
    expect(socatAddress("@").ok).toBe(false);
    expect(socatAddress("/tmp/a:b,c").ok).toBe(false);
  });

  it("writes KEY=value lines and keeps a value on one line", () => {
    expect(formatNotification({ READY: 1, STATUS: "running\nfine" })).toBe("READY=1\nSTATUS=running fine\n");
    expect(() => formatNotification({ "bad key": 1 })).toThrow(/bad field name/);
  });
});

describe.skipIf(!hasSocat())("SdNotifier", () => {
  it("does nothing without NOTIFY_SOCKET: no helper process", () => {
    const n = notifier({});
    n.start();
    n.notify({ READY: 1 });
    expect(n.enabled).toBe(false);
    expect(n.spawned).toBe(0);
    expect(n.helperPid).toBeUndefined();
  });

  it.each(["file", "abstract"] as const)("delivers notifications to a %s socket through one long-lived helper", async (kind) => {
    const s = await socket(kind);
    const n = notifier({ NOTIFY_SOCKET: s.address });
    n.start();
    await waitFor(() => n.helperPid !== undefined, 2000, "the helper to start");
    n.notify({ READY: 1, STATUS: "running" });
    for (let i = 0; i < 5; i++) n.notify({ WATCHDOG: 1 });
    await waitFor(() => s.count("WATCHDOG=1") === 5, 3000, () => `five pings; got:\n${s.text()}`);
    expect(s.lines.slice(0, 2).map((l) => l.line)).toEqual(["READY=1", "STATUS=running"]);
    expect(n.spawned).toBe(1);
  });

  it("respawns a helper that was killed, and messages flow again", async () => {
    const s = await socket("file");
    const n = notifier({ NOTIFY_SOCKET: s.address });
    n.start();
    await waitFor(() => n.helperPid !== undefined, 2000, "the helper to start");
    n.notify({ STATUS: "one" });
    await waitFor(() => s.has("STATUS=one"), 3000, "the first message");
    const first = n.helperPid!;
    process.kill(first, "SIGKILL");
    await waitFor(() => n.helperPid !== undefined && n.helperPid !== first, 3000, "a new helper");
    expect(n.spawned).toBe(2);
    // Messages sent while no helper ran are dropped, not queued: send until one arrives.
    await waitFor(
      () => {
        n.notify({ STATUS: "two" });
        return s.has("STATUS=two");
      },
      3000,
      "a message through the new helper",
    );
  });

  it("survives a helper that cannot run (missing program) and keeps retrying", async () => {
    const s = await socket("file");
    const n = notifier({ NOTIFY_SOCKET: s.address }, { command: "/nonexistent/socat" });
    n.start();
    await waitFor(() => n.spawned >= 3, 3000, "retries with backoff");
    n.notify({ READY: 1 }); // no helper: dropped, no throw
    expect(n.dropped).toBeGreaterThan(0);
  });

  it("a send that fails (no socket there) ends the helper: it is respawned and cellio carries on", async () => {
    const s = await socket("file");
    const n = notifier({ NOTIFY_SOCKET: `${s.address}.missing` });
    n.start();
    await waitFor(() => n.helperPid !== undefined, 2000, "the helper to start");
    // socat fails on its first sendto (ENOENT) and exits; keep notifying as the watchdog would.
    await waitFor(
      () => {
        n.notify({ WATCHDOG: 1 });
        return n.spawned >= 2;
      },
      3000,
      "a respawn after socat failed to send",
    );
    expect(s.lines).toEqual([]);
  });
});
