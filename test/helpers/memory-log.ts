/**
 * A pino logger that keeps its JSON lines in memory, parsed, for tests that
 * check what was logged (and prints them when CELLIO_TEST_LOG is set).
 */
import { Writable } from "node:stream";
import { pino, type LevelWithSilent } from "pino";
import type { Logger } from "../../src/infra/logger.js";

/** One logged line: pino's fields (level, msg, time, …) and the bindings. */
export type LogLine = { level: number; msg: string } & Record<string, unknown>;

export interface MemoryLog {
  readonly log: Logger;
  /** Every line so far, in order (the array grows as the logger writes). */
  readonly lines: LogLine[];
  /** The `msg` of every line. */
  messages(): string[];
  /** The raw JSON text, one line per entry. */
  text(): string;
}

export function memoryLog(level: LevelWithSilent = "debug"): MemoryLog {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split("\n")) {
        if (l.trim() === "") continue;
        raw.push(l);
        lines.push(JSON.parse(l) as LogLine);
        if (process.env.CELLIO_TEST_LOG) process.stderr.write(`${l}\n`);
      }
      cb();
    },
  });
  return { log: pino({ level }, stream), lines, messages: () => lines.map((l) => l.msg), text: () => raw.join("\n") };
}
