/**
 * config/cellio.schema.json (what editors use through the yaml-language-server
 * comment) is the JSON Schema generated from the zod schema, and it is usable:
 * the configs under config/ pass it and typical mistakes fail it. The check
 * below is a small hand-written validator for the keywords the generated
 * schema uses; it refuses keywords it does not know, so it cannot pass
 * silently when the schema grows.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { jsonSchema } from "../../src/config/schema.js";

const SCHEMA_FILE = "config/cellio.schema.json";
const REGENERATE = "npm run build && node dist/src/main.js schema > config/cellio.schema.json";

type Schema = Record<string, unknown>;

/** Every .yaml/.yml file under config/, at any depth. */
const CONFIGS = readdirSync("config", { recursive: true, encoding: "utf8" })
  .filter((f) => /\.ya?ml$/.test(f))
  .map((f) => join("config", f))
  .sort();

const ANNOTATIONS = new Set(["$schema", "$id", "title", "description", "default", "examples"]);
const KNOWN = new Set([
  ...ANNOTATIONS,
  "type",
  "const",
  "enum",
  "oneOf",
  "anyOf",
  "properties",
  "required",
  "additionalProperties",
  "propertyNames",
  "minLength",
  "pattern",
  "minimum",
  "maximum",
  "items",
  "minItems",
  "exclusiveMinimum",
  "exclusiveMaximum",
]);

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

/** Errors of `value` against `schema` ("" when valid), as "path: reason". */
function validate(schema: Schema, value: unknown, path = "$"): string[] {
  const unknown = Object.keys(schema).filter((k) => !KNOWN.has(k));
  if (unknown.length > 0) throw new Error(`${path}: the hand check does not know ${unknown.join(", ")}; extend it`);
  const errors: string[] = [];
  const t = typeOf(value);
  if (schema["type"] !== undefined) {
    const types = ([] as unknown[]).concat(schema["type"]);
    if (!types.some((x) => x === t || (x === "number" && t === "integer"))) errors.push(`${path}: expected ${types.join("|")}, got ${t}`);
  }
  if ("const" in schema && schema["const"] !== value) errors.push(`${path}: expected ${JSON.stringify(schema["const"])}`);
  if (Array.isArray(schema["enum"]) && !schema["enum"].includes(value)) errors.push(`${path}: not one of ${JSON.stringify(schema["enum"])}`);
  if (Array.isArray(schema["oneOf"])) {
    const branches = (schema["oneOf"] as Schema[]).map((s) => validate(s, value, path));
    const ok = branches.filter((e) => e.length === 0).length;
    if (ok !== 1) errors.push(`${path}: matches ${ok} of oneOf`, ...branches.flat());
  }
  if (Array.isArray(schema["anyOf"]) && !(schema["anyOf"] as Schema[]).some((s) => validate(s, value, path).length === 0)) {
    errors.push(`${path}: matches none of anyOf`);
  }
  if (typeof value === "string") {
    if (typeof schema["minLength"] === "number" && value.length < schema["minLength"]) errors.push(`${path}: too short`);
    if (typeof schema["pattern"] === "string" && !new RegExp(schema["pattern"], "u").test(value)) errors.push(`${path}: does not match ${schema["pattern"]}`);
  }
  if (typeof value === "number") {
    const bound = (k: string): number => {
      const b = schema[k];
      return typeof b === "number" ? b : NaN; // every comparison with NaN is false: no bound
    };
    if (value < bound("minimum")) errors.push(`${path}: below minimum`);
    if (value > bound("maximum")) errors.push(`${path}: above maximum`);
    if (value <= bound("exclusiveMinimum")) errors.push(`${path}: not above exclusiveMinimum`);
    if (value >= bound("exclusiveMaximum")) errors.push(`${path}: not below exclusiveMaximum`);
  }
  if (t === "array") {
    const arr = value as unknown[];
    if (typeof schema["minItems"] === "number" && arr.length < schema["minItems"]) errors.push(`${path}: too few items`);
    if (schema["items"]) arr.forEach((v, i) => errors.push(...validate(schema["items"] as Schema, v, `${path}[${i}]`)));
  }
  if (t === "object") {
    const obj = value as Record<string, unknown>;
    const props = (schema["properties"] ?? {}) as Record<string, Schema>;
    for (const key of (schema["required"] ?? []) as string[]) if (!(key in obj)) errors.push(`${path}: missing ${key}`);
    for (const [key, v] of Object.entries(obj)) {
      if (schema["propertyNames"]) errors.push(...validate(schema["propertyNames"] as Schema, key, `${path}[key ${key}]`));
      const sub = props[key];
      if (sub) errors.push(...validate(sub, v, `${path}.${key}`));
      else if (schema["additionalProperties"] === false) errors.push(`${path}: unknown key ${key}`);
      else if (typeof schema["additionalProperties"] === "object") {
        errors.push(...validate(schema["additionalProperties"] as Schema, v, `${path}.${key}`));
      }
    }
  }
  return errors;
}

const committed = JSON.parse(readFileSync(SCHEMA_FILE, "utf8")) as Schema;

describe("config/cellio.schema.json", () => {
  it("is the schema the code generates", () => {
    const generated = JSON.parse(JSON.stringify(jsonSchema())) as Schema;
    expect(committed, `${SCHEMA_FILE} is out of date; regenerate it: ${REGENERATE}`).toEqual(generated);
  });

  it("closes every device and point map and names the required keys", () => {
    const devices = (committed["properties"] as Record<string, Schema>)["devices"]!;
    const options = (devices["additionalProperties"] as Schema)["oneOf"] as Schema[];
    expect(options.length).toBeGreaterThan(0);
    expect(committed["additionalProperties"]).toBe(false);
    expect(committed["required"]).toEqual(expect.arrayContaining(["version", "cell", "cycle", "devices"]));
    for (const dev of options) {
      expect(dev["additionalProperties"]).toBe(false);
      expect(dev["required"]).toEqual(expect.arrayContaining(["protocol"]));
      const point = ((dev["properties"] as Record<string, Schema>)["points"]!["additionalProperties"] ?? {}) as Schema;
      expect(point["additionalProperties"]).toBe(false);
    }
  });

  it.each(CONFIGS)("accepts %s", (file) => {
    expect(validate(committed, parse(readFileSync(file, "utf8")))).toEqual([]);
  });

  const demo = parse(readFileSync("config/demo-cell.yaml", "utf8")) as Record<string, unknown>;
  const io1 = (demo["devices"] as Record<string, Record<string, unknown>>)["io1"]!;
  const mistakes: Array<[string, Record<string, unknown>, string]> = [
    ["a misspelled device key", { ...demo, devices: { io1: { ...io1, timout_ms: 5 } } }, "$.devices.io1: unknown key timout_ms"],
    ["a missing host", { ...demo, devices: { io1: { ...io1, host: undefined } } }, "$.devices.io1: missing host"],
    ["an unknown protocol", { ...demo, devices: { io1: { ...io1, protocol: "modbus-rtu" } } }, '$.devices.io1.protocol: expected "modbus-tcp"'],
    ["a port as a string", { ...demo, devices: { io1: { ...io1, port: "502" } } }, "$.devices.io1.port: expected integer, got string"],
    ["a point address as a number", { ...demo, devices: { io1: { ...io1, points: { p: { address: 5 } } } } }, "$.devices.io1.points.p.address: expected string, got integer"],
    ["a misspelled direction", { ...demo, devices: { io1: { ...io1, points: { p: { address: "coil:0", direction: "out" } } } } }, '$.devices.io1.points.p.direction: not one of ["input","output","memory"]'],
    ["version 2", { ...demo, version: 2 }, "$.version: expected 1"],
    ["a missing cycle", { ...demo, cycle: undefined }, "$: missing cycle"],
    ["an unknown top-level key", { ...demo, interlock: {} }, "$: unknown key interlock"],
    ["a unit id out of range", { ...demo, devices: { io1: { ...io1, unit_id: 256 } } }, "$.devices.io1.unit_id: above maximum"],
    ["a device name with a dash", { ...demo, devices: { "io-1": io1 } }, "$.devices[key io-1]: does not match ^[A-Za-z_][A-Za-z0-9_]*$"],
  ];
  it.each(mistakes)("rejects %s", (_what, config, error) => {
    const clean = JSON.parse(JSON.stringify(config)) as unknown; // drops the undefined keys
    expect(validate(committed, clean)).toContain(error);
  });
});
