/**
 * Helpers for the MQTT tests: a fake cell (CellView) whose image the test
 * sets, a CommandPort that records and answers as told (or the real command
 * router), technician clients and waits on what they receive. The TCP proxy
 * that can be taken down: gate.ts.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from "mqtt";
import { Subject } from "rxjs";
import { expect } from "vitest";
import { CommandRouter, type Caller, type Command, type CommandResult } from "../../../src/core/commands.js";
import type { PointDef, PointKind } from "../../../src/core/points.js";
import { goodSample, INITIAL_SAMPLE, sample, type Sample, type Status, type Value } from "../../../src/core/sample.js";
import { silentLogger, createLogger, type Logger } from "../../../src/infra/logger.js";
import { mqttConfigSchema, type MqttConfig, type MqttConfigInput } from "../../../src/north/mqtt/config.js";
import { replyPayloadSchema } from "../../../src/north/mqtt/contract.js";
import type {
  CellView,
  CommandPort,
  CycleView,
  DeviceView,
  InterlockView,
  SequenceView,
} from "../../../src/north/mqtt/ports.js";
import { MqttService } from "../../../src/north/mqtt/service.js";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function testLog(): Logger {
  const level = process.env.CELLIO_TEST_LOG;
  return level === "debug" || level === "info" || level === "warn" ? createLogger({ level, fd: 2, pretty: false }) : silentLogger();
}

// ---- a fake cell ---------------------------------------------------------------

function point(index: number, device: string, name: string, kind: PointKind, direction: PointDef["direction"], deadband = 0): PointDef {
  return {
    index,
    id: `${device}.${name}`,
    device,
    name,
    kind,
    direction,
    safe: direction === "input" ? null : kind === "bool" ? false : 0,
    unit: undefined,
    description: undefined,
    scale: undefined,
    deadband,
    address: "test",
    heartbeat: undefined,
    operatorWritable: direction !== "input" && kind === "int",
  };
}

export const POINTS: readonly PointDef[] = [
  point(0, "io1", "door_closed", "bool", "input"),
  point(1, "io1", "pressure", "float", "input", 0.1),
  point(2, "io1", "conveyor_run", "bool", "output"),
  point(3, "robot", "speed", "int", "output"),
];

export class FakeCell implements CellView {
  readonly cellId: string;
  readonly periodMs = 10;
  readonly points = POINTS;
  readonly subject = new Subject<CycleView>();
  readonly cycles$ = this.subject.asObservable();
  image: Sample[] = POINTS.map(() => INITIAL_SAMPLE);
  interlockStates: InterlockView[] = [];
  sequenceStates: SequenceView[] = [];
  deviceList: DeviceView[] = [
    { name: "io1", state: "good", lastError: "" },
    { name: "robot", state: "good", lastError: "" },
  ];
  mode = "running";
  private k = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(cellId = "t1") {
    this.cellId = cellId;
  }

  devices(): readonly DeviceView[] {
    return this.deviceList;
  }

  loop(): undefined {
    return undefined;
  }

  interlocks(): readonly InterlockView[] {
    return this.interlockStates;
  }

  sequences(): readonly SequenceView[] {
    return this.sequenceStates;
  }

  set(i: number, v: Value, ts = Date.now()): void {
    this.image[i] = goodSample(v, ts);
  }

  /** Mark every point of `device` with a bad status (value and source time kept, as the runner does). */
  lose(device: string, status: Status = "bad_no_communication"): void {
    for (const p of POINTS) if (p.device === device) this.image[p.index] = sample(this.image[p.index]!.value, status, this.image[p.index]!.sourceTs);
    this.deviceList = this.deviceList.map((d) => (d.name === device ? { ...d, state: "bad", lastError: "no answer" } : d));
  }

  emit(extra: Partial<CycleView> = {}): void {
    this.subject.next({
      cycle: this.k++,
      wallMs: Date.now(),
      mode: this.mode,
      image: this.image.slice(),
      ...extra,
    });
  }

  /** Emit a cycle every 10 ms until stop(). */
  run(): void {
    this.timer ??= setInterval(() => this.emit(), 10);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** A CommandPort that records what it is given and answers `next` (accepted by default). */
export class FakePort implements CommandPort {
  readonly received: { command: Command; from: Caller }[] = [];
  answer: (c: Command, from: Caller) => CommandResult = () => ({ accepted: true });

  submit(command: Command, from: Caller): CommandResult {
    this.received.push({ command, from });
    return this.answer(command, from);
  }
}

export function mqttConfig(input: MqttConfigInput): MqttConfig {
  return mqttConfigSchema.parse(input);
}

export function newService(config: MqttConfig, cell: CellView, port: CommandPort, env: Record<string, string> = {}): MqttService {
  return new MqttService(config, cell, port, { log: testLog(), version: "0.0.0-test", configHash: "abc123", env });
}

// ---- technician clients --------------------------------------------------------

export interface Received {
  readonly topic: string;
  readonly text: string;
  readonly packet: IPublishPacket;
}

/** An MQTT client that records every message it receives. */
export class Tech {
  readonly messages: Received[] = [];

  private constructor(readonly client: MqttClient) {
    client.on("message", (topic, payload, packet) => this.messages.push({ topic, text: payload.toString(), packet }));
  }

  static async connect(url: string, opts: IClientOptions): Promise<Tech> {
    const client = await mqtt.connectAsync(url, { reconnectPeriod: 200, connectTimeout: 5000, ...opts });
    return new Tech(client);
  }

  async sub(topic: string | string[], qos: 0 | 1 = 1): Promise<void> {
    await this.client.subscribeAsync(topic, { qos });
  }

  /** The first message (received since message index `from`, or arriving within `ms`) on `topic` that satisfies `pred`. */
  async wait(
    topic: string | ((t: string) => boolean),
    pred: (json: unknown, r: Received) => boolean,
    ms: number,
    what = "",
    from = 0,
  ): Promise<Received> {
    const match = typeof topic === "string" ? (t: string) => t === topic : topic;
    const t0 = Date.now();
    let seen = from;
    for (;;) {
      for (; seen < this.messages.length; seen++) {
        const r = this.messages[seen]!;
        if (!match(r.topic)) continue;
        let json: unknown;
        try {
          json = JSON.parse(r.text);
        } catch {
          json = r.text;
        }
        if (pred(json, r)) return r;
      }
      if (Date.now() - t0 > ms) {
        const last = this.messages.filter((r) => match(r.topic)).slice(-3).map((r) => `${r.topic} ${r.text}`);
        throw new Error(`timed out after ${ms} ms waiting for ${what || String(topic)}; last on that topic: ${last.join(" | ") || "(nothing)"}`);
      }
      await sleep(10);
    }
  }

  /** Messages on `topic` from index `from` on. */
  on(topic: string, from = 0): Received[] {
    return this.messages.slice(from).filter((r) => r.topic === topic);
  }

  async end(): Promise<void> {
    await this.client.endAsync(true);
  }
}

/** Subscribe a fresh client to `topic` and return the retained message it gets (or undefined after `ms`). */
export async function retained(url: string, opts: IClientOptions, topic: string, ms = 1500): Promise<unknown> {
  const t = await Tech.connect(url, opts);
  try {
    await t.sub(topic);
    const r = await t.wait(topic, (_j, r) => r.packet.retain, ms).catch(() => undefined);
    return r === undefined ? undefined : (JSON.parse(r.text) as unknown);
  } finally {
    await t.end();
  }
}

export const parse = (r: Received): Record<string, unknown> => JSON.parse(r.text) as Record<string, unknown>;

// ---- the real command router, on fake interlocks ----------------------------------

/**
 * The real CommandRouter (src/core/commands.ts) over the fake cell's points:
 * robot.speed is operator-writable, io1.conveyor_run is forced by the
 * tripped interlock "door" (so setting it is refused as interlocked), the
 * interlock "door" resets only for engineers, sequence "main" exists.
 * Records every command it is given.
 */
export function routerPort(): FakePort {
  const router = new CommandRouter({
    points: POINTS,
    pointIndex: new Map(POINTS.map((p) => [p.id, p.index])),
    operatorWritable: new Set(POINTS.filter((p) => p.operatorWritable).map((p) => p.index)),
    interlocks: {
      forcedBy: (i) => (i === 2 ? "door" : undefined),
      forcedPoints: (id) => (id === "door" ? [2] : []),
      checkReset: (id, role) =>
        id !== "door"
          ? { accepted: false, code: "unknown_target", reason: `no interlock "${id}"` }
          : role === "engineer"
            ? { accepted: true }
            : { accepted: false, code: "forbidden", reason: `role ${role} may not reset interlock door` },
      reset: () => ({ accepted: true }),
    },
    sequences: { has: (id) => id === "main", reset: () => true },
  });
  const port = new FakePort();
  port.answer = (c, from) => router.submit(c, from);
  return port;
}

/**
 * Send a command as `user` (already connected as `t`) and return its
 * correlated reply: MQTT 5 with Response Topic and Correlation Data, MQTT
 * 3.1.1 with `reply_to` and `correlation_id` in the payload. A string payload
 * is sent as is (a malformed one cannot name its reply topic: the reply then
 * goes to the user's reply root).
 */
export async function sendCommand(
  t: Tech,
  prefix: string,
  user: string,
  kind: string,
  payload: string | object,
  version: 4 | 5,
): Promise<Record<string, unknown>> {
  const root = `${prefix}/reply/${user}`;
  await t.sub(`${root}/#`);
  const corr = `c-${Math.random().toString(36).slice(2)}`;
  const replyTopic = `${root}/${corr}`;
  const body = typeof payload === "string" ? payload : JSON.stringify(version === 4 ? { ...payload, reply_to: replyTopic, correlation_id: corr } : payload);
  const from = t.messages.length;
  await t.client.publishAsync(`${prefix}/cmd/${kind}/${user}`, body, {
    qos: 1,
    ...(version === 5 ? { properties: { responseTopic: replyTopic, correlationData: Buffer.from(corr) } } : {}),
  });
  const r = await t.wait((topic) => topic === replyTopic || topic === root, () => true, 3000, `the reply to ${kind}`, from);
  const reply = replyPayloadSchema.parse(parse(r)) as Record<string, unknown>;
  if (version === 5) expect(r.packet.properties?.correlationData?.toString()).toBe(corr);
  else if (typeof payload !== "string") expect(reply["correlation_id"]).toBe(corr);
  if (typeof payload !== "string") expect(r.topic).toBe(replyTopic);
  return reply;
}
