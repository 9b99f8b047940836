/**
 * pino: JSON by default, readable on a terminal (pino-pretty in-process when
 * stdout is a TTY or CELLIO_LOG_PRETTY=1). Components get child loggers bound
 * with {component, device}.
 */
import { pino, type Logger, type LevelWithSilent } from "pino";
import pretty from "pino-pretty";

export type { Logger };

export function createLogger(
  opts: { level?: LevelWithSilent; pretty?: boolean; name?: string; /** 1 stdout (default), 2 stderr */ fd?: 1 | 2 } = {},
): Logger {
  const fd = opts.fd ?? 1;
  const tty = fd === 1 ? process.stdout.isTTY : process.stderr.isTTY;
  const level = opts.level ?? (process.env.CELLIO_LOG_LEVEL as LevelWithSilent | undefined) ?? "info";
  const wantPretty = opts.pretty ?? (process.env.CELLIO_LOG_PRETTY === "1" || (tty && process.env.CELLIO_LOG_PRETTY !== "0"));
  const base = { level, name: opts.name ?? "cellio" };
  if (wantPretty) {
    return pino(base, pretty({ colorize: tty === true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname", destination: fd, sync: true }));
  }
  return pino(base, pino.destination({ fd, sync: false }));
}

/** A logger that drops everything (tests, benchmarks). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
