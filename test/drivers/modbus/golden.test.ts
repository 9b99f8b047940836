/**
 * Golden cases: every folder under cases/ holds a device fragment
 * (config.yaml) and either the plan it compiles to (expected.json) or the
 * text an error must contain (error.txt).
 *
 * config.yaml:
 *   address_base: 0 | 1
 *   max_gap: { registers, bits }
 *   workarounds: { one_request_per_point, max_registers_per_read, max_bits_per_read }
 *   points: { <name>: { address: "..." } }
 * and optionally raw device memory plus the values the points must decode to:
 *   holding_registers / input_registers: [words...] from wire address 0,
 *                                        or { <wire address>: [words...] } blocks
 *   coils / discrete_inputs:             the same with booleans
 *   expected_values: { <name>: value }   (.nan / .inf / -0.0 are YAML floats)
 * Memory not given reads as 0 / false.
 *
 * UPDATE_GOLDEN=1 rewrites expected.json from the current planner (review the diff).
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { Value } from "../../../src/core/sample.js";
import { formatAddress, parseAddress, type AddressBase } from "../../../src/drivers/modbus/address.js";
import { decodeResponse, planReads, type PlanPoint, type ReadRequest } from "../../../src/drivers/modbus/plan.js";

const CASES = join(dirname(fileURLToPath(import.meta.url)), "cases");
const UPDATE = process.env["UPDATE_GOLDEN"] === "1";

type Memory<T> = T[] | Record<string, T[]> | undefined;

interface CaseConfig {
  address_base?: AddressBase;
  max_gap?: { registers?: number; bits?: number };
  workarounds?: { one_request_per_point?: boolean; max_registers_per_read?: number; max_bits_per_read?: number };
  points: Record<string, { address: string }>;
  holding_registers?: Memory<number>;
  input_registers?: Memory<number>;
  coils?: Memory<boolean>;
  discrete_inputs?: Memory<boolean>;
  expected_values?: Record<string, Value>;
}

interface GoldenPlan {
  requests: Array<{ fc: number; start: number; count: number; items: Array<{ at: number; point: string; address: string }> }>;
}

type Outcome = { ok: true; names: string[]; requests: ReadRequest[] } | { ok: false; errors: string[] };

function compile(cfg: CaseConfig): Outcome {
  const base = cfg.address_base ?? 0;
  const names = Object.keys(cfg.points);
  const points: PlanPoint[] = [];
  const errors: string[] = [];
  names.forEach((name, index) => {
    const r = parseAddress(cfg.points[name]!.address, base);
    if (r.ok) points.push({ index, address: r.address });
    else errors.push(`points.${name}.address: ${r.error}`);
  });
  if (errors.length > 0) return { ok: false, errors };
  const plan = planReads(points, {
    maxGapRegisters: cfg.max_gap?.registers ?? 10,
    maxGapBits: cfg.max_gap?.bits ?? 32,
    maxRegistersPerRead: cfg.workarounds?.max_registers_per_read ?? 125,
    maxBitsPerRead: cfg.workarounds?.max_bits_per_read ?? 2000,
    onePerPoint: cfg.workarounds?.one_request_per_point ?? false,
    addressBase: base,
  });
  if (!plan.ok) return { ok: false, errors: plan.errors.map((e) => (e.index === null ? e.message : `points.${names[e.index]}: ${e.message}`)) };
  return { ok: true, names, requests: plan.requests };
}

function render(names: string[], requests: ReadRequest[], base: AddressBase): GoldenPlan {
  return {
    requests: requests.map((q) => ({
      fc: q.fc,
      start: q.start,
      count: q.count,
      items: q.items.map((i) => ({ at: i.at, point: names[i.index]!, address: formatAddress(i.address, base) })),
    })),
  };
}

function window<T>(mem: Memory<T>, start: number, count: number, blank: T): T[] {
  const out = new Array<T>(count).fill(blank);
  const blocks: Array<[number, T[]]> = mem === undefined ? [] : Array.isArray(mem) ? [[0, mem]] : Object.entries(mem).map(([k, v]) => [Number(k), v]);
  for (const [at, data] of blocks) {
    data.forEach((v, i) => {
      const k = at + i - start;
      if (k >= 0 && k < count) out[k] = v;
    });
  }
  return out;
}

function decodeAll(cfg: CaseConfig, names: string[], requests: ReadRequest[]): Record<string, Value> {
  const got: Record<string, Value> = {};
  for (const q of requests) {
    const data =
      q.fc === 1
        ? window(cfg.coils, q.start, q.count, false)
        : q.fc === 2
          ? window(cfg.discrete_inputs, q.start, q.count, false)
          : window(q.fc === 3 ? cfg.holding_registers : cfg.input_registers, q.start, q.count, 0);
    const r = decodeResponse(q, data, (index, value) => {
      got[names[index]!] = value;
    });
    if (!r.ok) throw new Error(r.error);
  }
  return got;
}

const caseNames = existsSync(CASES) ? readdirSync(CASES, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort() : [];

describe("golden cases", () => {
  it("has cases", () => {
    expect(caseNames.length).toBeGreaterThanOrEqual(10);
  });

  it.each(caseNames)("%s", (name) => {
    const dir = join(CASES, name);
    const cfg = parse(readFileSync(join(dir, "config.yaml"), "utf8")) as CaseConfig;
    const errorFile = join(dir, "error.txt");
    const expectedFile = join(dir, "expected.json");
    const outcome = compile(cfg);

    if (existsSync(errorFile)) {
      expect(existsSync(expectedFile), "a case has error.txt or expected.json, not both").toBe(false);
      expect(outcome.ok, "the case should fail to plan").toBe(false);
      if (!outcome.ok) expect(outcome.errors.join("\n")).toContain(readFileSync(errorFile, "utf8").trim());
      return;
    }

    if (!outcome.ok) throw new Error(outcome.errors.join("\n"));
    const plan = render(outcome.names, outcome.requests, cfg.address_base ?? 0);
    if (UPDATE) writeFileSync(expectedFile, `${JSON.stringify(plan, null, 2)}\n`);
    expect(existsSync(expectedFile), "expected.json missing: run with UPDATE_GOLDEN=1 and review it").toBe(true);
    expect(plan).toEqual(JSON.parse(readFileSync(expectedFile, "utf8")));

    if (cfg.expected_values !== undefined) {
      const got = decodeAll(cfg, outcome.names, outcome.requests);
      const want = cfg.expected_values;
      expect(Object.fromEntries(Object.keys(want).map((k) => [k, got[k]]))).toEqual(want);
    }
  });
});
