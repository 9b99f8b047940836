/**
 * YAML → validated, compiled, frozen cell model. Every problem comes back at
 * once, each with its YAML path and line:column.
 */
import { readFile } from "node:fs/promises";
import { LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { cellConfigSchema, type CellConfig } from "./schema.js";
import { ConfigError, SourceMap, type ConfigIssue, type PathKey } from "./issues.js";
import { compileCell, type CellModel } from "./compile.js";
import { CellioError, errorMessage } from "../infra/errors.js";

function zodIssues(map: SourceMap, issues: readonly z.core.$ZodIssue[]): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of issues) {
    const path = issue.path.filter((p): p is PathKey => typeof p !== "symbol");
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        out.push({
          path: [...path, key].join("."),
          ...map.locateKey(path, key),
          message: `unknown key "${key}"`,
        });
      }
      continue;
    }
    out.push(map.issue(path, issue.message));
  }
  return out;
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
export function loadConfigText(text: string, file = "<config>"): LoadedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const map = new SourceMap(doc, lineCounter);
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const { line, col } = lineCounter.linePos(e.pos[0]);
        return { path: "", line, col, message: e.message.split("\n")[0] ?? e.message };
      }),
    );
  }
  const parsed = cellConfigSchema.safeParse(doc.toJS());
  if (!parsed.success) throw new ConfigError(file, zodIssues(map, parsed.error.issues));
  const config = deepFreeze(parsed.data);
  const compiled = compileCell(config, map);
  if (!compiled.ok) throw new ConfigError(file, compiled.issues);
  return { file, config, model: compiled.model };
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
