/**
 * SIGINT/SIGTERM: the first signal stops cleanly (safe outputs, bounded in
 * time); a second signal exits at once.
 */
import type { Logger } from "../infra/logger.js";

export function onShutdownSignals(log: Logger, stop: (signal: string) => Promise<void>, boundMs: number): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(130);
    }
    stopping = true;
    log.info({ signal }, "stopping");
    const hard = setTimeout(() => {
      log.error({ boundMs }, "clean stop took too long: exiting");
      process.exit(1);
    }, boundMs);
    hard.unref();
    stop(signal).then(
      () => process.exit(0),
      (e: unknown) => {
        log.error({ err: String(e) }, "error while stopping");
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
}
