/**
 * Entry of the north worker thread (host.ts starts it from the compiled
 * dist/ file next to it): MQTT and the OPC UA server, off the loop's thread.
 */
import os from "node:os";
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import type { FromWorker, NorthInit, ToWorker } from "./protocol.js";
import { NorthRuntime } from "./runtime.js";
import { SyncCommandClient } from "./sync-call.js";

/**
 * host.ts imports this type, so every build that compiles the host (even one
 * from src/main.ts alone, as the tests' CLI builds are) also emits this file.
 */
export type NorthWorkerName = "cellio-north";

if (isMainThread || parentPort === null) throw new Error("north/host/worker.js runs only as a worker thread (host.ts starts it)");
const port = parentPort;
// Below the loop's thread when they compete for a core. Linux only: there the nice value is per
// thread (setpriority(PRIO_PROCESS, 0) changes the calling thread); elsewhere it would be the process.
if (process.platform === "linux") {
  try {
    os.setPriority(os.constants.priority.PRIORITY_BELOW_NORMAL);
  } catch {
    // not allowed here: north runs at the loop's priority
  }
}
const init = workerData as NorthInit;
const post = (m: FromWorker): void => {
  port.postMessage(m);
  // Stopped: let the thread end by itself (terminate() while a crypto job is in flight can abort the process).
  if (m.t === "stopped") port.close();
};
const runtime = new NorthRuntime({ init, post, commands: new SyncCommandClient(init.shared, post, init.commandTimeoutMs) });
port.on("message", (m: ToWorker) => runtime.onMessage(m));
runtime.start().catch((e: unknown) => {
  // start() logs each service's failure itself: this is a bug, and the host restarts the worker.
  throw e instanceof Error ? e : new Error(String(e));
});
