/**
 * node-opcua stays out of a cell without OPC UA devices: nothing app.ts
 * reaches through the OPC UA driver imports node-opcua at module level (the
 * driver loads link.ts, which does, with a dynamic import in start()).
 * Checked on the sources: every static, non-type import reachable from
 * driver.ts, followed through cellio's own files.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const STATIC_IMPORT = /^\s*import\s+(?!type\b)[^;]*?from\s+"([^"]+)"/gms;

function staticImports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(STATIC_IMPORT)].map((m) => m[1]!);
}

function reachable(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const todo = [entry];
  while (todo.length > 0) {
    const f = todo.pop()!;
    if (files.has(f)) continue;
    files.add(f);
    for (const spec of staticImports(f)) {
      if (spec.startsWith(".")) todo.push(path.resolve(path.dirname(f), spec.replace(/\.js$/, ".ts")));
      else packages.add(spec);
    }
  }
  return { files, packages };
}

describe("lazy node-opcua", () => {
  it("driver.ts reaches no node-opcua import; link.ts does (and is loaded on demand)", () => {
    const fromDriver = reachable(path.join(ROOT, "src/drivers/opcua/driver.ts"));
    expect([...fromDriver.packages].filter((p) => p.startsWith("node-opcua"))).toEqual([]);
    expect([...fromDriver.files].map((f) => path.basename(f))).not.toContain("link.ts");
    expect(readFileSync(path.join(ROOT, "src/drivers/opcua/driver.ts"), "utf8")).toContain('await import("./link.js")');
    expect(reachable(path.join(ROOT, "src/drivers/opcua/link.ts")).packages.has("node-opcua")).toBe(true);
  });
});
