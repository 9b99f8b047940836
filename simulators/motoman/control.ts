/**
 * HTTP control interface for simulated robots (node:http, 127.0.0.1 only):
 * the operator's and the fault injector's hands on a `MotomanSim`. A server of
 * its own, next to the Modbus control interface (which handles raw registers
 * and Modbus faults of the same device).
 *
 *   GET  /robots                         status, commands and comm faults of every robot
 *   POST /robot   { robot?, action, ... } one operator or fault action (below)
 *
 * Actions (`robot` may be left out when there is exactly one robot):
 *   { action: "estop", pressed: bool, which?: "external"|"pendant"|"controller" }   (default external)
 *   { action: "alarm", code: 1..65535, major?: bool, resettable?: bool }            raise
 *   { action: "clear_alarm", code }                                                  cause repaired
 *   { action: "mode", mode: "teach"|"play" }
 *   { action: "remote", on: bool }
 *   { action: "speed", pct: 0..100 }
 *   { action: "continuous_cycle", on: bool }
 *   { action: "energy_saving", on: bool }
 *   { action: "commands", commands: { extServoOn?, extStart?, extHold?, alarmReset?, jobStrobe?, jobNumber?, heartbeat?, watchdogMs? } }
 *   { action: "comms", drop: "silent"|"refuse"|null }                                 null restores
 *   { action: "latency", ms: 0.., jitterMs?: 0.. }                                    0 removes
 *
 * Answers `{ ok: true, status }`; 400 `{ error }` for bad JSON, bad fields,
 * unknown robots and comm faults of a robot without Modbus (an OPC UA-only
 * device: its `faults` read null); 404 unknown path; 405 wrong method.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";
import { describeRefusal } from "../../src/profiles/motoman-yrc1000.js";
import { errorMessage } from "../../src/infra/errors.js";
import type { MotomanSim } from "./sim.js";

export interface MotomanControlOptions {
  /** 0 = ephemeral. */
  readonly port: number;
  readonly robots: ReadonlyMap<string, MotomanSim>;
}

export interface MotomanControlServer {
  readonly port: number;
  close(): Promise<void>;
}

const onOff = z.boolean();
const u16 = z.number().int().min(0).max(0xffff);

const actionSchema = z.discriminatedUnion("action", [
  z.object({ action: z.literal("estop"), pressed: onOff, which: z.enum(["external", "pendant", "controller"]).default("external") }),
  z.object({
    action: z.literal("alarm"),
    code: z.number().int().min(1).max(0xffff),
    major: z.boolean().default(false),
    resettable: z.boolean().default(true),
  }),
  z.object({ action: z.literal("clear_alarm"), code: z.number().int().min(1).max(0xffff) }),
  z.object({ action: z.literal("mode"), mode: z.enum(["teach", "play"]) }),
  z.object({ action: z.literal("remote"), on: onOff }),
  z.object({ action: z.literal("speed"), pct: z.number().min(0).max(100) }),
  z.object({ action: z.literal("continuous_cycle"), on: onOff }),
  z.object({ action: z.literal("energy_saving"), on: onOff }),
  z.object({
    action: z.literal("commands"),
    commands: z
      .object({
        extServoOn: onOff,
        extStart: onOff,
        extHold: onOff,
        alarmReset: onOff,
        jobStrobe: onOff,
        jobNumber: u16,
        heartbeat: u16,
        watchdogMs: u16,
      })
      .partial()
      .strict(),
  }),
  z.object({ action: z.literal("comms"), drop: z.enum(["silent", "refuse"]).nullable() }),
  z.object({ action: z.literal("latency"), ms: z.number().min(0).max(60_000), jitterMs: z.number().min(0).max(60_000).default(0) }),
]);

const bodySchema = z.intersection(z.object({ robot: z.string().optional() }), actionSchema);
type Action = z.infer<typeof actionSchema>;

class BadRequest extends Error {}

function apply(sim: MotomanSim, a: Action): void {
  switch (a.action) {
    case "estop":
      if (a.pressed) sim.pressEstop(a.which);
      else sim.releaseEstop(a.which);
      return;
    case "alarm":
      sim.raiseAlarm(a.code, { major: a.major, resettable: a.resettable });
      return;
    case "clear_alarm":
      sim.clearAlarm(a.code);
      return;
    case "mode":
      sim.setMode(a.mode);
      return;
    case "remote":
      sim.setRemote(a.on);
      return;
    case "speed":
      sim.setSpeedOverride(a.pct);
      return;
    case "continuous_cycle":
      sim.setContinuousCycle(a.on);
      return;
    case "energy_saving":
      sim.setEnergySaving(a.on);
      return;
    case "commands":
      sim.setCommands(a.commands);
      return;
    case "comms":
      if (a.drop === null) sim.restoreComms();
      else sim.dropComms(a.drop);
      return;
    case "latency":
      sim.setLatency(a.ms, a.jitterMs);
      return;
  }
}

function view(sim: MotomanSim): object {
  const status = sim.status;
  return {
    status: { ...status, errorText: describeRefusal(status.errorCode) },
    commands: sim.commands,
    comms: sim.commsDropped ?? "ok",
    faults: sim.servesModbus ? sim.faults.active() : null, // null: an OPC UA-only robot has no Modbus link to fault
  };
}

function robotOf(robots: ReadonlyMap<string, MotomanSim>, name: string | undefined): MotomanSim {
  if (name === undefined) {
    if (robots.size === 1) return [...robots.values()][0]!;
    throw new BadRequest(`say which robot (known: ${[...robots.keys()].join(", ")})`);
  }
  const sim = robots.get(name);
  if (!sim) throw new BadRequest(`unknown robot "${name}" (known: ${[...robots.keys()].join(", ")})`);
  return sim;
}

const MAX_BODY = 64 * 1024;

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new BadRequest("request body too large");
    chunks.push(c);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
  } catch (e) {
    throw new BadRequest(`bad JSON: ${errorMessage(e)}`);
  }
}

async function route(robots: ReadonlyMap<string, MotomanSim>, req: http.IncomingMessage): Promise<[number, object]> {
  const url = new URL(req.url ?? "/", "http://127.0.0.1");
  const routes: Record<string, { method: string; run: () => Promise<object> | object }> = {
    "/robots": { method: "GET", run: () => ({ robots: Object.fromEntries([...robots].map(([n, s]) => [n, view(s)])) }) },
    "/robot": {
      method: "POST",
      run: async () => {
        const r = bodySchema.safeParse(await readJson(req));
        if (!r.success) throw new BadRequest(z.prettifyError(r.error));
        const sim = robotOf(robots, r.data.robot);
        if ((r.data.action === "comms" || r.data.action === "latency") && !sim.servesModbus) {
          throw new BadRequest(`robot "${r.data.robot ?? [...robots.keys()][0]}" is reached over OPC UA only: there is no Modbus link to fault`);
        }
        try {
          apply(sim, r.data);
        } catch (e) {
          if (e instanceof RangeError) throw new BadRequest(e.message);
          throw e;
        }
        return { ok: true, ...view(sim) };
      },
    },
  };
  const r = Object.hasOwn(routes, url.pathname) ? routes[url.pathname] : undefined;
  if (!r) return [404, { error: `no such endpoint ${url.pathname}` }];
  if (req.method !== r.method) return [405, { error: `${url.pathname} takes ${r.method}` }];
  try {
    return [200, await r.run()];
  } catch (e) {
    if (e instanceof BadRequest) return [400, { error: e.message }];
    return [500, { error: errorMessage(e) }];
  }
}

export async function startMotomanControlServer(opts: MotomanControlOptions): Promise<MotomanControlServer> {
  const server = http.createServer((req, res) => {
    void route(opts.robots, req).then(([status, body]) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
