/**
 * Shutdown helper: drive every output of every device to its safe value (all
 * of them, not only changed ones) and wait for the writes, at most
 * `timeoutMs`. A device that fails or does not answer is named in `failed`.
 */
import { catchError, defaultIfEmpty, forkJoin, last, lastValueFrom, map, of, timeout, type SchedulerLike } from "rxjs";
import type { Value } from "../core/sample.js";
import type { DeviceRunner } from "./device-runner.js";
import type { WriteOutcome } from "./device-port.js";

export function writeSafeOutputs(
  runners: readonly DeviceRunner[],
  safe: readonly (Value | null)[],
  timeoutMs: number,
  scheduler: SchedulerLike,
): Promise<{ ok: boolean; failed: string[] }> {
  const jobs = runners
    .filter((r) => r.opts.outputs.length > 0)
    .map((r) => {
      r.forgetWritten();
      return r.port.write(r.changes(safe, true)).pipe(
        timeout({ first: timeoutMs, with: () => of(failure(`no answer within ${timeoutMs} ms`)), scheduler }),
        catchError((e: unknown) => of(failure(String(e)))),
        defaultIfEmpty(failure("driver completed without an outcome")),
        last(),
        map((o) => (o.ok ? undefined : `${r.name}: ${o.error}`)),
      );
    });
  if (jobs.length === 0) return Promise.resolve({ ok: true, failed: [] });
  return lastValueFrom(
    forkJoin(jobs).pipe(
      map((results) => {
        const failed = results.filter((x): x is string => x !== undefined);
        return { ok: failed.length === 0, failed };
      }),
    ),
  );
}

function failure(error: string): WriteOutcome {
  return { ok: false, status: "bad_no_communication", error, failed: [] };
}
