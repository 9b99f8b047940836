/**
 * Every cell config shipped under config/ (the demo and config/examples/, at
 * any depth) loads without a single issue. New files are picked up by
 * themselves: drop a YAML file in config/ and it is tested.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfigFile } from "../../src/config/load.js";
import { ConfigError } from "../../src/config/issues.js";

const CONFIGS = readdirSync("config", { recursive: true, encoding: "utf8" })
  .filter((f) => /\.ya?ml$/.test(f))
  .map((f) => join("config", f))
  .sort();

describe("configs under config/", () => {
  it("include the demo and the examples", () => {
    expect(CONFIGS).toContain(join("config", "demo-cell.yaml"));
    expect(CONFIGS.filter((f) => f.startsWith(join("config", "examples"))).length).toBeGreaterThanOrEqual(2);
  });

  it.each(CONFIGS)("%s validates", async (file) => {
    try {
      const { model } = await loadConfigFile(file);
      expect(model.devices.length).toBeGreaterThan(0);
      expect(model.points.length).toBeGreaterThan(0);
    } catch (e) {
      // Show the loader's own report (file:line:col: path: message) on failure.
      if (e instanceof ConfigError) expect.fail(e.message);
      throw e;
    }
  });

  it.each(CONFIGS)("%s points its editor at a schema file that exists", (file) => {
    const m = /^#\s*yaml-language-server:\s*\$schema=(\S+)/m.exec(readFileSync(file, "utf8"));
    expect(m, `${file} has no "# yaml-language-server: $schema=..." line`).not.toBeNull();
    const target = resolve(dirname(file), m![1]!);
    expect(existsSync(target), `${file}: ${m![1]} does not exist`).toBe(true);
    expect(target).toBe(resolve("config", "cellio.schema.json"));
  });
});
