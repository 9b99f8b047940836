/**
 * A capture of the fleet's traffic on the loopback interface for one run
 * (tcpdump; wire.ts reads it). tcpdump needs CAP_NET_RAW (root); where it is
 * missing or not allowed, `WireCapture.start` says so once on stderr and
 * returns undefined, and the bench leaves its wire rows out.
 *
 * What it costs the run: the kernel runs the filter on every loopback packet
 * and copies the matching ones (requests, answers, flips; not the ACKs) into
 * tcpdump's ring buffer, in the sender's system call. tcpdump itself wakes
 * when a block of that buffer fills, a few times a second. In the daemon's
 * perf samples (fleet, 15 s) that work was 3.6 %, so the bench takes its CPU
 * figures from a window without the capture (FleetSim.cpuFigures).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pcapPackets, pcapStartMs } from "./pcap.js";
import type { Stall } from "./wake-probe.js";
import { analyzeWire, type WireLayout, type WireReport } from "./wire.js";

/** Enough for an MBAP frame pair behind Ethernet, IPv4 and TCP with options. */
const SNAP_BYTES = 160;
/** tcpdump's kernel buffer (KiB): 30 s of the fleet is about 200,000 packets. */
const BUFFER_KIB = 32768;
const READY_MS = 5000;

let unavailable: string | undefined;

export class WireCapture {
  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    private readonly file: string,
    private readonly layout: WireLayout,
    private readonly stderr: () => string,
  ) {}

  /** Starts capturing the fleet's requests, answers and flips; undefined where tcpdump cannot run. */
  static async start(layout: WireLayout): Promise<WireCapture | undefined> {
    if (unavailable !== undefined) return undefined;
    const probe = spawnSync("tcpdump", ["--version"], { encoding: "utf8" });
    if (probe.status !== 0) return WireCapture.skip(`tcpdump not found (${probe.error?.message ?? probe.stderr.trim()})`);
    const dir = await mkdtemp(path.join(os.tmpdir(), "cellio-wire-"));
    const file = path.join(dir, "fleet.pcap");
    const ports = layout.ports.map((p) => `port ${p}`).join(" or ");
    // TCP segments with a payload to or from a device, and the flip datagrams.
    const filter = `(tcp and (${ports}) and (((ip[2:2] - ((ip[0]&0xf)<<2)) - ((tcp[12]&0xf0)>>2)) != 0)) or (udp and dst port ${layout.markerPort})`;
    // -Z root: Debian's tcpdump drops to its own user before it opens the file, which is in a private directory.
    const child = spawn("tcpdump", ["-i", "lo", "-n", "-Z", "root", "-s", String(SNAP_BYTES), "-B", String(BUFFER_KIB), "--time-stamp-precision=nano", "-w", file, filter], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    child.stderr.setEncoding("utf8");
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), READY_MS);
      child.stderr.on("data", (d: string) => {
        err += d;
        if (err.includes("listening on")) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      child.once("exit", () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (!ready) {
      child.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
      return WireCapture.skip(`tcpdump did not start: ${err.trim() || "no answer"}`);
    }
    return new WireCapture(child, dir, file, layout, () => err);
  }

  private static skip(why: string): undefined {
    unavailable = why;
    process.stderr.write(`fleet bench: no capture of the wire, its rows are left out: ${why}\n`);
    return undefined;
  }

  /**
   * Stops the capture and reads it. Throws when the kernel dropped packets (the figures would have holes).
   * `stalls` (wake-probe.ts, ms since 1970) are set beside the long poll intervals.
   */
  async stop(stalls?: readonly Stall[]): Promise<WireReport> {
    try {
      if (this.child.exitCode === null && this.child.signalCode === null) {
        // "close", not "exit": the drop count comes on stderr as tcpdump ends.
        const exited = new Promise((resolve) => this.child.once("close", resolve));
        this.child.kill("SIGINT");
        await exited;
      }
      const dropped = /(\d+) packets? dropped by kernel/.exec(this.stderr());
      if (dropped && Number(dropped[1]) > 0) throw new Error(`wire capture: the kernel dropped ${dropped[1]} packets`);
      const file = await readFile(this.file);
      const start = pcapStartMs(file);
      const onCapture = stalls && start !== undefined ? stalls.map((x) => ({ at: x.at - start, ms: x.ms })) : undefined;
      return analyzeWire(pcapPackets(file), this.layout, onCapture);
    } finally {
      await rm(this.dir, { recursive: true, force: true });
    }
  }
}
