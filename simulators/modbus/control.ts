/**
 * A small JSON control interface over HTTP (node:http, loopback only) to
 * read and set simulator values and faults from outside the process: the
 * demo's operators and the e2e tests "open the door" with it.
 *
 *   GET  /state                                   targets, unit ids, active faults, stats
 *   GET  /get?target=&unit=&area=&address=&count=&type=&order=&length=
 *   POST /set    { target, unit?, area, address, value | values, type?, order?, length? }
 *   POST /fault  { target, unit?, count?, fault: { kind, ... } }   (kind "disconnect" acts at once)
 *   POST /clear  { target?, unit?, kind? }
 *
 * Errors: 400 with `{ error }` for bad JSON, bad fields, unknown targets and
 * addresses outside the bank; 404 unknown path; 405 wrong method.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";
import { isCellioError, errorMessage } from "../../src/infra/errors.js";
import { type Area, type RegisterArea, type RegisterBank, WORD_ORDERS, type WordOrder } from "./bank.js";
import { FAULT_KINDS, type FaultInjector, type FaultKind, MALFORMATIONS, type ServerStats } from "./faults.js";

export interface ControlTarget {
  bank(unit?: number): RegisterBank;
  faults: FaultInjector;
  stats?: ServerStats;
  unitIds?(): number[];
}

export interface ControlServerOptions {
  port: number;
  host?: "127.0.0.1";
  targets: Record<string, ControlTarget>;
}

export interface ControlServer {
  readonly port: number;
  close(): Promise<void>;
}

const VALUE_TYPES = ["bool", "uint16", "int16", "uint32", "int32", "float32", "string"] as const;
type ValueType = (typeof VALUE_TYPES)[number];

const areaSchema = z.enum(["coil", "di", "hr", "ir"]);
const unitSchema = z.number().int().min(0).max(255);
const addressSchema = z.number().int().min(0).max(65535);
const scalar = z.union([z.boolean(), z.number(), z.string()]);

const setSchema = z
  .object({
    target: z.string(),
    unit: unitSchema.optional(),
    area: areaSchema,
    address: addressSchema,
    value: scalar.optional(),
    values: z.array(scalar).min(1).optional(),
    type: z.enum(VALUE_TYPES).optional(),
    order: z.enum(WORD_ORDERS as [WordOrder, ...WordOrder[]]).optional(),
    length: z.number().int().min(1).max(125).optional(),
  })
  .refine((b) => (b.value === undefined) !== (b.values === undefined), "give exactly one of value or values");

const getSchema = z.object({
  target: z.string(),
  unit: z.coerce.number().pipe(unitSchema).optional(),
  area: areaSchema,
  address: z.coerce.number().pipe(addressSchema),
  count: z.coerce.number().int().min(1).max(2000).default(1),
  type: z.enum(VALUE_TYPES).optional(),
  order: z.enum(WORD_ORDERS as [WordOrder, ...WordOrder[]]).optional(),
  length: z.coerce.number().int().min(1).max(125).optional(),
});

const faultSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("latency"), ms: z.number().min(0), jitterMs: z.number().min(0).optional() }),
  z.object({ kind: z.literal("noAnswer") }),
  z.object({ kind: z.literal("busy") }),
  z.object({ kind: z.literal("exception"), code: z.number().int().min(1).max(11) }),
  z.object({ kind: z.literal("garbage") }),
  z.object({ kind: z.literal("malform"), malformation: z.enum(MALFORMATIONS) }),
  z.object({ kind: z.literal("dropEvery"), n: z.number().int().min(1) }),
  z.object({ kind: z.literal("refuseConnections") }),
  z.object({ kind: z.literal("disconnect") }),
]);

const faultBody = z.object({
  target: z.string(),
  unit: unitSchema.optional(),
  count: z.number().int().min(1).optional(),
  fault: faultSchema,
});

const clearBody = z.object({
  target: z.string().optional(),
  unit: unitSchema.optional(),
  kind: z.enum(FAULT_KINDS as [FaultKind, ...FaultKind[]]).optional(),
});

class BadRequest extends Error {}

function parse<T>(schema: z.ZodType<T>, input: unknown): T {
  const r = schema.safeParse(input);
  if (!r.success) throw new BadRequest(z.prettifyError(r.error));
  return r.data;
}

function isBitArea(area: Area): area is "coil" | "di" {
  return area === "coil" || area === "di";
}

function registerWidth(type: ValueType, length: number | undefined): number {
  switch (type) {
    case "uint32":
    case "int32":
    case "float32":
      return 2;
    case "string":
      return length ?? 1;
    case "bool":
    case "uint16":
    case "int16":
      return 1;
  }
}

function writeValue(bank: RegisterBank, area: RegisterArea, addr: number, type: ValueType, v: unknown, order: WordOrder, length?: number): void {
  if (type === "string") {
    if (typeof v !== "string") throw new BadRequest(`type string needs a string value, got ${JSON.stringify(v)}`);
    bank.setString(area, addr, v, length ?? Math.ceil(v.length / 2));
    return;
  }
  if (typeof v !== "number") throw new BadRequest(`type ${type} needs a number value, got ${JSON.stringify(v)}`);
  switch (type) {
    case "bool":
      throw new BadRequest("type bool is for coil and di areas");
    case "uint16":
    case "int16":
      bank.setRegister(area, addr, v);
      return;
    case "uint32":
      bank.setUInt32(area, addr, v, order);
      return;
    case "int32":
      bank.setInt32(area, addr, v, order);
      return;
    case "float32":
      bank.setFloat32(area, addr, v, order);
      return;
  }
}

function readValue(bank: RegisterBank, area: RegisterArea, addr: number, type: ValueType, order: WordOrder, length?: number): number | string {
  switch (type) {
    case "bool":
      throw new BadRequest("type bool is for coil and di areas");
    case "uint16":
      return bank.getRegister(area, addr);
    case "int16":
      return bank.getInt16(area, addr);
    case "uint32":
      return bank.getUInt32(area, addr, order);
    case "int32":
      return bank.getInt32(area, addr, order);
    case "float32":
      return bank.getFloat32(area, addr, order);
    case "string":
      return bank.getString(area, addr, length ?? 1);
  }
}

function handleSet(targets: Record<string, ControlTarget>, body: unknown): object {
  const b = parse(setSchema, body);
  const bank = targetOf(targets, b.target).bank(b.unit);
  const values = b.values ?? [b.value];
  if (isBitArea(b.area)) {
    if (b.type !== undefined && b.type !== "bool") throw new BadRequest(`area ${b.area} holds bits: type must be bool`);
    const bits = values.map((v) => {
      if (v === true || v === false || v === 0 || v === 1) return v;
      throw new BadRequest(`bit value must be true, false, 0 or 1, got ${JSON.stringify(v)}`);
    });
    bank.setBits(b.area, b.address, bits);
  } else {
    const type = b.type ?? "uint16";
    const width = registerWidth(type, b.length);
    values.forEach((v, i) => writeValue(bank, b.area as RegisterArea, b.address + i * width, type, v, b.order ?? "ABCD", b.length));
  }
  return { ok: true };
}

function handleGet(targets: Record<string, ControlTarget>, query: URLSearchParams): object {
  const q = parse(getSchema, Object.fromEntries(query));
  const bank = targetOf(targets, q.target).bank(q.unit);
  if (isBitArea(q.area)) {
    if (q.type !== undefined && q.type !== "bool") throw new BadRequest(`area ${q.area} holds bits: type must be bool`);
    return { values: bank.getBits(q.area, q.address, q.count) };
  }
  const type = q.type ?? "uint16";
  const width = registerWidth(type, q.length);
  const values: (number | string)[] = [];
  for (let i = 0; i < q.count; i++) values.push(readValue(bank, q.area, q.address + i * width, type, q.order ?? "ABCD", q.length));
  return { values };
}

function handleFault(targets: Record<string, ControlTarget>, body: unknown): object {
  const b = parse(faultBody, body);
  const t = targetOf(targets, b.target);
  if (b.fault.kind === "disconnect") t.faults.disconnect();
  else t.faults.set(b.fault, { unit: b.unit, count: b.count });
  return { ok: true, active: t.faults.active() };
}

function handleClear(targets: Record<string, ControlTarget>, body: unknown): object {
  const b = parse(clearBody, body ?? {});
  const list = b.target === undefined ? Object.values(targets) : [targetOf(targets, b.target)];
  for (const t of list) t.faults.clear({ unit: b.unit, kind: b.kind });
  return { ok: true };
}

function state(targets: Record<string, ControlTarget>): object {
  const out: Record<string, object> = {};
  for (const [name, t] of Object.entries(targets)) {
    out[name] = { units: t.unitIds?.() ?? [], faults: t.faults.active(), stats: t.stats ?? null };
  }
  return { targets: out };
}

function targetOf(targets: Record<string, ControlTarget>, name: string): ControlTarget {
  const t = Object.hasOwn(targets, name) ? targets[name] : undefined;
  if (!t) throw new BadRequest(`unknown target "${name}" (known: ${Object.keys(targets).join(", ")})`);
  return t;
}

const MAX_BODY = 1 << 20;

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new BadRequest("request body too large");
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new BadRequest(`bad JSON: ${errorMessage(e)}`);
  }
}

async function route(targets: Record<string, ControlTarget>, req: http.IncomingMessage): Promise<[number, object]> {
  const url = new URL(req.url ?? "/", "http://127.0.0.1");
  const routes: Record<string, { method: string; run: () => Promise<object> | object }> = {
    "/state": { method: "GET", run: () => state(targets) },
    "/get": { method: "GET", run: () => handleGet(targets, url.searchParams) },
    "/set": { method: "POST", run: async () => handleSet(targets, await readJson(req)) },
    "/fault": { method: "POST", run: async () => handleFault(targets, await readJson(req)) },
    "/clear": { method: "POST", run: async () => handleClear(targets, await readJson(req)) },
  };
  const r = Object.hasOwn(routes, url.pathname) ? routes[url.pathname] : undefined;
  if (!r) return [404, { error: `no such endpoint ${url.pathname}` }];
  if (req.method !== r.method) return [405, { error: `${url.pathname} takes ${r.method}` }];
  try {
    return [200, await r.run()];
  } catch (e) {
    if (e instanceof BadRequest || isCellioError(e, "CELLIO_ERR_SIM")) return [400, { error: e.message }];
    return [500, { error: errorMessage(e) }];
  }
}

export async function startControlServer(opts: ControlServerOptions): Promise<ControlServer> {
  const server = http.createServer((req, res) => {
    void route(opts.targets, req).then(([status, body]) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host ?? "127.0.0.1", () => {
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
