/**
 * YAML → validated, compiled, frozen cell model. Every problem comes back at
 * once, each with its YAML path and line:column.
 */
import { readFile } from "node:fs/promises";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type YAMLError } from "yaml";
import { z } from "zod";
import { cellConfigSchema, type CellConfig } from "./schema.js";
import { ConfigError, SourceMap, pathString, type ConfigIssue, type PathKey } from "./issues.js";
import { compileCell, type CellModel } from "./compile.js";
import { closest } from "../core/expr/check.js";
import { CellioError, errorMessage } from "../infra/errors.js";

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The keys the schema accepts in the map at `path` (following unions by the data's discriminator). */
function knownKeys(data: unknown, path: readonly PathKey[]): string[] {
  let schema: unknown = cellConfigSchema;
  let value = data;
  for (let i = 0; ; i++) {
    for (;;) {
      if (schema instanceof z.ZodDefault || schema instanceof z.ZodOptional) schema = schema.unwrap();
      else if (schema instanceof z.ZodDiscriminatedUnion) {
        const disc = schema._zod.def.discriminator;
        const tag = isRecord(value) ? value[disc] : undefined;
        schema = schema.options.find((o) => {
          const lit: unknown = o instanceof z.ZodObject ? o.shape[disc] : undefined;
          return lit instanceof z.ZodLiteral && lit.values.has(tag as never);
        });
      } else break;
    }
    if (i === path.length) return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
    const key = String(path[i]);
    if (schema instanceof z.ZodObject) schema = schema.shape[key];
    else if (schema instanceof z.ZodRecord) schema = schema.valueType;
    else if (schema instanceof z.ZodArray) schema = schema.element;
    else return [];
    value = valueAt(value, [key]);
  }
}

function valueAt(data: unknown, path: readonly PathKey[]): unknown {
  let v = data;
  for (const key of path) v = isRecord(v) ? v[String(key)] : Array.isArray(v) ? (v as unknown[])[Number(key)] : undefined;
  return v;
}

/** Is the key at the end of `path` absent from its (existing) parent map? */
function isMissing(data: unknown, path: readonly PathKey[]): boolean {
  const parent = valueAt(data, path.slice(0, -1));
  return isRecord(parent) && path.length > 0 && !(String(path[path.length - 1]) in parent);
}

/** Where to report a key missing at `path`: on the key of the map that lacks it. */
function locateParent(map: SourceMap, path: readonly PathKey[]): { line: number; col: number } {
  const parent = path.slice(0, -1);
  const key = parent[parent.length - 1];
  return key === undefined ? map.locate([]) : map.locateKey(parent.slice(0, -1), String(key));
}

function zodIssues(map: SourceMap, data: unknown, issues: readonly z.core.$ZodIssue[]): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of issues) {
    const path = issue.path.filter((p): p is PathKey => typeof p !== "symbol");
    const last = String(path[path.length - 1]);
    if (issue.code === "unrecognized_keys") {
      const known = knownKeys(data, path);
      for (const key of issue.keys) {
        const hint = closest(key, known);
        out.push({
          path: pathString([...path, key]),
          ...map.locateKey(path, key),
          message: `unknown key "${key}"${hint === undefined ? "" : ` (did you mean "${hint}"?)`}`,
        });
      }
      continue;
    }
    if (issue.code === "invalid_union" && issue.discriminator !== undefined && "options" in issue) {
      const options = (issue.options ?? []).map(String).join(", ");
      out.push(
        isMissing(data, path)
          ? { path: pathString(path), ...locateParent(map, path), message: `missing required key "${last}" (one of: ${options})` }
          : map.issue(path, `unknown ${last} ${JSON.stringify(valueAt(data, path))}; expected one of: ${options}`),
      );
      continue;
    }
    if (issue.code === "invalid_union" && issue.errors.length > 0) {
      const alternatives = unionAlternatives(issue.errors);
      if (alternatives !== undefined) {
        out.push(map.issue(path, `expected ${[alternatives.slice(0, -1).join(", "), alternatives.at(-1)].filter(Boolean).join(" or ")}, got ${describeValue(valueAt(data, path))}`));
        continue;
      }
    }
    if (issue.code === "invalid_key") {
      const why = issue.issues.map((i) => i.message).join("; ");
      out.push({ path: pathString(path), ...map.locateKey(path.slice(0, -1), last), message: `invalid name "${last}": ${why}` });
      continue;
    }
    if (isMissing(data, path)) {
      out.push({ path: pathString(path), ...locateParent(map, path), message: `missing required key "${last}"` });
      continue;
    }
    out.push(map.issue(path, issue.message));
  }
  return out;
}

/** zod's type names as a YAML author says them. */
const TYPE_WORDS: Record<string, string> = {
  array: "a list",
  record: "a map",
  object: "a map",
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "a boolean",
};

/** What a plain union (e.g. 0 | 1, boolean | number | string) accepts, when every branch failed at its top. */
function unionAlternatives(branches: readonly (readonly z.core.$ZodIssue[])[]): string[] | undefined {
  const out: string[] = [];
  for (const branch of branches) {
    const [only, ...rest] = branch;
    if (only === undefined || rest.length > 0 || only.path.length > 0) return undefined;
    if (only.code === "invalid_value") out.push(...only.values.map((v) => JSON.stringify(v)));
    else if (only.code === "invalid_type") out.push(TYPE_WORDS[only.expected] ?? only.expected);
    else return undefined;
  }
  return out;
}

function describeValue(v: unknown): string {
  if (Array.isArray(v)) return "a list";
  if (isRecord(v)) return "a map";
  return v === null ? "nothing" : JSON.stringify(v);
}

/** YAML parse errors; a duplicate key is named with its path and the line of the first one. */
function yamlIssues(doc: Document, lines: LineCounter, errors: readonly YAMLError[]): ConfigIssue[] {
  return errors.map((e) => {
    const { line, col } = lines.linePos(e.pos[0]);
    const issue = { path: "", line, col, message: e.message.split("\n")[0] ?? e.message };
    if (e.code !== "DUPLICATE_KEY") return issue;
    const found = findDuplicate(doc.contents, [], e.pos[0]);
    if (!found) return issue;
    const first = found.firstAt === undefined ? "" : ` (first defined on line ${lines.linePos(found.firstAt).line})`;
    return { ...issue, path: pathString(found.path), message: `duplicate key "${found.key}"${first}` };
  });
}

function findDuplicate(
  node: unknown,
  path: PathKey[],
  pos: number,
): { path: PathKey[]; key: string; firstAt: number | undefined } | undefined {
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isScalar(pair.key)) continue;
      const key = String(pair.key.value);
      if (pair.key.range?.[0] === pos) {
        const first = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
        return { path: [...path, key], key, firstAt: isScalar(first?.key) ? first.key.range?.[0] : undefined };
      }
      const inner = findDuplicate(pair.value, [...path, key], pos);
      if (inner) return inner;
    }
  } else if (isSeq(node)) {
    for (const [i, item] of node.items.entries()) {
      const inner = findDuplicate(item, [...path, i], pos);
      if (inner) return inner;
    }
  }
  return undefined;
}

/** Throws every issue, in file order. */
function fail(file: string, issues: readonly ConfigIssue[]): never {
  throw new ConfigError(file, [...issues].sort((a, b) => a.line - b.line || a.col - b.col));
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}

export interface LoadedConfig {
  readonly file: string;
  readonly config: CellConfig;
  readonly model: CellModel;
}

/** Parse and validate YAML text. Throws ConfigError with every issue found. */
/**
 * A copy of `data` without the keys zod reported as unknown, or undefined
 * when some other problem is among the issues.
 */
function withoutUnknownKeys(data: unknown, issues: readonly z.core.$ZodIssue[]): unknown {
  if (!issues.every((i) => i.code === "unrecognized_keys")) return undefined;
  const copy: unknown = structuredClone(data);
  for (const issue of issues) {
    if (issue.code !== "unrecognized_keys") continue;
    const parent = valueAt(copy, issue.path.filter((p): p is PathKey => typeof p !== "symbol"));
    if (isRecord(parent)) for (const key of issue.keys) delete parent[key];
  }
  return copy;
}

export function loadConfigText(text: string, file = "<config>"): LoadedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const map = new SourceMap(doc, lineCounter, text);
  if (doc.errors.length > 0) fail(file, yamlIssues(doc, lineCounter, doc.errors));
  if (!isMap(doc.contents)) {
    const what = doc.contents === null ? "the file is empty (or only comments)" : "the top level is not a map";
    fail(file, [{ path: "", ...map.locate([]), message: `${what}: a cell config is a map with version, cell, cycle and devices` }]);
  }
  const data: unknown = doc.toJS();
  const parsed = cellConfigSchema.safeParse(data);
  if (!parsed.success) {
    const issues = zodIssues(map, data, parsed.error.issues);
    // Unknown keys (the commonest mistake) do not stop the semantic checks:
    // drop them, and if that is all that was wrong, report the rest too.
    const stripped = withoutUnknownKeys(data, parsed.error.issues);
    const retry = stripped === undefined ? undefined : cellConfigSchema.safeParse(stripped);
    if (retry?.success) {
      const compiled = compileCell(retry.data, map);
      if (!compiled.ok) issues.push(...compiled.issues);
    }
    fail(file, issues);
  }
  const config = deepFreeze(parsed.data);
  const compiled = compileCell(config, map);
  if (!compiled.ok) fail(file, compiled.issues);
  return Object.freeze({ file, config, model: compiled.model });
}

export async function loadConfigFile(file: string): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new CellioError("CELLIO_ERR_CONFIG_IO", `cannot read ${file}: ${errorMessage(e)}`, { file }, { cause: e });
  }
  return loadConfigText(text, file);
}
