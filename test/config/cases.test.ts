/**
 * Golden config-error cases: every folder under cases/ holds a cell config
 * with mistakes (config.yaml) and the exact errors the loader must report
 * for it (errors.txt), one `config.yaml:line:col: path: message` line per
 * issue, in file order. Name a new case after the mistake it shows.
 *
 * UPDATE_GOLDEN=1 npx vitest run test/config/cases.test.ts rewrites every
 * errors.txt from the current loader. Review the diff line by line: a golden
 * file is a claim that the path, line, column and message are right.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadConfigText } from "../../src/config/load.js";
import { ConfigError, formatIssues } from "../../src/config/issues.js";

const CASES = join(dirname(fileURLToPath(import.meta.url)), "cases");
const UPDATE = process.env["UPDATE_GOLDEN"] === "1";
const FILE = "config.yaml";

const names = readdirSync(CASES, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

function loadErrors(text: string): ConfigError {
  try {
    loadConfigText(text, FILE);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error(`${FILE} loaded without errors; a golden case must fail`);
}

describe("golden config-error cases", () => {
  it("has the cases", () => {
    expect(names.length).toBeGreaterThanOrEqual(30);
  });

  it.each(names)("%s", (name) => {
    const text = readFileSync(join(CASES, name, FILE), "utf8");
    const err = loadErrors(text);
    const actual = `${formatIssues(FILE, err.issues)}\n`;
    const golden = join(CASES, name, "errors.txt");
    if (UPDATE) writeFileSync(golden, actual);
    expect(existsSync(golden), `${golden} is missing (UPDATE_GOLDEN=1 writes it)`).toBe(true);
    expect(actual).toBe(readFileSync(golden, "utf8"));

    // Every issue points inside the file, and the thrown message carries them all.
    const lines = text.split("\n");
    for (const issue of err.issues) {
      expect(issue.line, issue.path).toBeGreaterThanOrEqual(1);
      expect(issue.line, issue.path).toBeLessThanOrEqual(Math.max(1, lines.length));
      expect(issue.col, issue.path).toBeGreaterThanOrEqual(1);
      expect(issue.col, issue.path).toBeLessThanOrEqual((lines[issue.line - 1] ?? "").length + 1);
    }
    expect(err.message).toContain(actual.trimEnd());
    expect(err.code).toBe("CELLIO_ERR_CONFIG");
  });
});
