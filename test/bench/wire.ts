/**
 * The fleet bench's figures from the wire: a capture of the loopback
 * interface (pcap.ts) during a run, read with the same rules as the
 * simulator's own figures (fleet-sim.ts), but timed by the kernel as each
 * segment is sent instead of by the simulator's JavaScript as it gets round
 * to it. The simulator is one process answering 32 devices on the same two
 * cores as the controller: a request that arrives while it answers 20 others
 * is stamped up to a millisecond or two late (its event loop's delay), and a
 * device-side interval is the difference of two such stamps. A device on a
 * network sees a request when it arrives; the wire is that point.
 *
 * What is read:
 * - requests: Modbus TCP frames (MBAP) sent to a device's port; a segment
 *   may carry several (pipelined requests leave together). A poll is a
 *   request with the layout's `pollFc`, the function code of the first read
 *   of every poll, where the fleet's plans give one (each poll is then
 *   counted once, however late its other reads follow); else requests
 *   closer than SAME_POLL_MS make one poll, as the simulator counts them;
 * - answers: frames from a device's port, matched to their request by
 *   transaction id (the device's answer time, the simulator's share);
 * - flips: a UDP datagram the simulator sends right after it flips device
 *   0's input (one byte, the new value), so the flip is on the same clock.
 */
import type { HistogramSummary } from "../../src/loop/histogram.js";
import type { WirePacket } from "./pcap.js";
import { Samples } from "./samples.js";

/** Requests closer than this (ms) belong to one poll: in the simulator's own count (fleet-sim.ts), and here without a `pollFc`. */
export const SAME_POLL_MS = 3;
/** A poll interval longer than this (ms) misses the fleet's target (interval max ≤ 20 ms). */
export const LONG_INTERVAL_MS = 20;

/** A time the machine held a CPU back (wake-probe.ts: a pinned bare thread's wake-up, due at `at`, came `ms` late), on the capture's clock. */
export interface CpuStall {
  readonly at: number;
  readonly ms: number;
}

export interface WireReport {
  readonly requests: number;
  readonly answers: number;
  /** Poll intervals per device (first request of one poll to the first of the next). */
  readonly interval: HistogramSummary;
  /** Polls per second per device, in device order: its intervals' count over their span (0 for fewer than two polls). */
  readonly pollsPerSecond: readonly number[];
  /** A request on the wire → its answer on the wire: the simulator's answer time. */
  readonly answer: HistogramSummary;
  /** Device 0's input flip → the coil write that mirrors it. */
  readonly mirror: HistogramSummary;
  /** Flip → the first poll of device 0 that starts after it. */
  readonly mirrorWait: HistogramSummary;
  /** That poll → the coil write. */
  readonly mirrorCycle: HistogramSummary;
  /** The last answer (any device) before a mirroring write → that write: the controller's own share of part 2. */
  readonly reaction: HistogramSummary;
  /** Poll intervals longer than LONG_INTERVAL_MS, all devices. */
  readonly longIntervals: number;
  /** Of those, the ones during which a CPU stalled (only when stalls were given). */
  readonly longDuringStall?: number;
}

export interface WireLayout {
  /** Every device's TCP port, in device order; device 0 is the one whose input flips. */
  readonly ports: readonly number[];
  /** Where the simulator's flip datagrams go. */
  readonly markerPort: number;
  /** The function code every poll starts with and no other request has (its plan's first read), if there is one. */
  readonly pollFc?: number;
}

/** One device's polls: their count and span, and their intervals, recorded into a shared histogram. */
export class PollTrack {
  private lastPoll = -Infinity;
  private firstPoll = 0;
  private polls = 0;

  constructor(
    private readonly intervals: Samples,
    /** Told of every interval longer than LONG_INTERVAL_MS: the polls' start times. */
    private readonly onLong?: (from: number, to: number) => void,
  ) {}

  /** A request at `t`; whether it starts a poll (by default: more than SAME_POLL_MS after the last poll's start). */
  request(t: number, startsPoll = t - this.lastPoll > SAME_POLL_MS): boolean {
    if (!startsPoll) return false;
    if (this.polls === 0) this.firstPoll = t;
    else {
      this.intervals.recordMs(t - this.lastPoll);
      if (t - this.lastPoll > LONG_INTERVAL_MS) this.onLong?.(this.lastPoll, t);
    }
    this.lastPoll = t;
    this.polls += 1;
    return true;
  }

  reset(): void {
    this.lastPoll = -Infinity;
    this.polls = 0;
  }

  /** The intervals' count over their span (0 for fewer than two polls). */
  pollsPerSecond(): number {
    const span = (this.lastPoll - this.firstPoll) / 1000;
    return span > 0 ? (this.polls - 1) / span : 0;
  }
}

interface Frame {
  readonly tid: number;
  readonly pdu: Buffer;
}

/** The whole MBAP frames of a TCP payload (a frame cut by the snap length or the segment is left out). */
function frames(payload: Buffer): Frame[] {
  const out: Frame[] = [];
  let o = 0;
  while (o + 8 <= payload.length) {
    const len = payload.readUInt16BE(o + 4);
    if (len < 2 || o + 6 + len > payload.length) break;
    out.push({ tid: payload.readUInt16BE(o), pdu: payload.subarray(o + 7, o + 6 + len) });
    o += 6 + len;
  }
  return out;
}

/** The value a write request gives coil 0, or undefined when it does not write coil 0. */
export function coil0Written(pdu: Buffer): boolean | undefined {
  const fc = pdu[0];
  if (fc === 5 && pdu.length >= 5 && pdu.readUInt16BE(1) === 0) return pdu.readUInt16BE(3) === 0xff00;
  if (fc === 15 && pdu.length >= 7 && pdu.readUInt16BE(1) === 0 && pdu.readUInt16BE(3) >= 1) return (pdu[6]! & 1) === 1;
  return undefined;
}

/**
 * The figures of a capture. `stalls` (on the capture's clock, ms since its first packet) are the
 * times the machine held a CPU back: each long poll interval is set beside them.
 */
export function analyzeWire(packets: Iterable<WirePacket>, layout: WireLayout, stalls?: readonly CpuStall[]): WireReport {
  const device = new Map(layout.ports.map((p, i) => [p, i]));
  // Outstanding requests per device by transaction id (0–65535).
  const sent = layout.ports.map(() => new Map<number, number>());
  const interval = new Samples(1 << 17);
  let longIntervals = 0;
  let longDuringStall = 0;
  const onLong = (from: number, to: number): void => {
    longIntervals += 1;
    if (stalls?.some((s) => s.at < to && s.at + s.ms > from)) longDuringStall += 1;
  };
  const tracks = layout.ports.map(() => new PollTrack(interval, onLong));
  const answer = new Samples(1 << 17);
  const mirror = new Samples(1 << 10);
  const mirrorWait = new Samples(1 << 10);
  const mirrorCycle = new Samples(1 << 10);
  const reaction = new Samples(1 << 10);
  let lastAnswer = -Infinity;
  let requests = 0;
  let answers = 0;
  let flip: { t: number; value: boolean; pollAt: number } | undefined;
  for (const p of packets) {
    if (p.proto === "udp") {
      if (p.dst === layout.markerPort && p.payload.length >= 1) flip = { t: p.t, value: p.payload[0] === 1, pollAt: 0 };
      continue;
    }
    const to = device.get(p.dst);
    if (to !== undefined) {
      for (const f of frames(p.payload)) {
        requests += 1;
        sent[to]!.set(f.tid, p.t);
        if (tracks[to]!.request(p.t, layout.pollFc === undefined ? undefined : f.pdu[0] === layout.pollFc)) {
          if (to === 0 && flip && flip.pollAt === 0) flip.pollAt = p.t;
        }
        if (to === 0 && flip && coil0Written(f.pdu) === flip.value) {
          mirror.recordMs(p.t - flip.t);
          if (flip.pollAt > 0) {
            mirrorWait.recordMs(flip.pollAt - flip.t);
            mirrorCycle.recordMs(p.t - flip.pollAt);
            if (lastAnswer >= flip.pollAt) reaction.recordMs(p.t - lastAnswer);
          }
          flip = undefined;
        }
      }
      continue;
    }
    const from = device.get(p.src);
    if (from === undefined) continue;
    for (const f of frames(p.payload)) {
      const at = sent[from]!.get(f.tid);
      if (at === undefined) continue;
      sent[from]!.delete(f.tid);
      answers += 1;
      answer.recordMs(p.t - at);
      lastAnswer = p.t;
    }
  }
  return {
    requests,
    answers,
    interval: interval.summary(),
    pollsPerSecond: tracks.map((t) => t.pollsPerSecond()),
    answer: answer.summary(),
    mirror: mirror.summary(),
    mirrorWait: mirrorWait.summary(),
    mirrorCycle: mirrorCycle.summary(),
    reaction: reaction.summary(),
    longIntervals,
    ...(stalls ? { longDuringStall } : {}),
  };
}
