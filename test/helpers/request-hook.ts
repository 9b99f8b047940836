/**
 * A callback with the time (performance.now()) of every request a Modbus
 * simulator handles, as it arrives. The simulator has no request hook, so
 * this wraps the `requests` counter of its stats in an accessor: every
 * `requests += 1` calls `onRequest`. `stop()` puts a plain counter back.
 */
import { performance } from "node:perf_hooks";

export function onRequests(server: { readonly stats: { requests: number } }, onRequest: (t: number) => void): { stop(): void } {
  const stats = server.stats;
  let count = stats.requests;
  Object.defineProperty(stats, "requests", {
    configurable: true,
    enumerable: true,
    get: () => count,
    set: (v: number) => {
      if (v > count) onRequest(performance.now());
      count = v;
    },
  });
  return {
    stop() {
      Object.defineProperty(stats, "requests", { configurable: true, enumerable: true, writable: true, value: count });
    },
  };
}
