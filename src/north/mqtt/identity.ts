/**
 * What the birth payload says about this cellio: its version (from
 * package.json) and a short hash of the loaded config.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** cellio's version from its package.json (found upward from this file, in src/ or dist/src/). */
export function cellioVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as { name?: unknown; version?: unknown };
      if (pkg.name === "cellio" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // not here: one level up
    }
    dir = path.dirname(dir);
  }
  return "unknown";
}

/** Short stable hash of a config object (sha256 of its JSON, 12 hex digits). */
export function configHash(config: unknown): string {
  return createHash("sha256").update(JSON.stringify(config)).digest("hex").slice(0, 12);
}
