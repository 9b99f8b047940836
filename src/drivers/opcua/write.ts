/**
 * Writing outputs over the live link (node-opcua): one Write request for all
 * changes, each result's StatusCode checked; a change the server refused, a
 * value that does not fit its variable, or a timed-out Write is a failed
 * output (the loop writes it again).
 */
import { AttributeIds, Variant, type WriteValueOptions } from "node-opcua";
import { errorMessage, isCellioError } from "../../infra/errors.js";
import { toRaw } from "../../core/scaling.js";
import type { FailureStatus, OutputChange, WriteOutcome } from "../../loop/device-port.js";
import type { OpcuaDeviceConfig } from "./config.js";
import type { OpcuaPlan } from "./plan.js";
import { toVariant } from "./codec.js";
import { withTimeout } from "./connect.js";
import { statusOfCode } from "./status.js";
import type { Live } from "./link.js";

export interface WriterHooks {
  current(): Live | undefined;
  failure(): { status: FailureStatus; error: string };
  timedOut(gen: number): void;
  ok(): void;
  fault(gen: number, why: string): void;
}

export class LinkWriter {
  private readonly posByIndex: ReadonlyMap<number, number>;

  constructor(
    private readonly name: string,
    private readonly cfg: OpcuaDeviceConfig,
    private readonly plan: OpcuaPlan,
    private readonly hooks: WriterHooks,
  ) {
    this.posByIndex = new Map(plan.points.map((p, pos) => [p.index, pos]));
  }

  async write(changes: readonly OutputChange[]): Promise<WriteOutcome> {
    const all = changes.map((c) => c.index);
    const l = this.hooks.current();
    if (!l) return { ok: false, ...this.hooks.failure(), failed: all };
    const refused: { index: number; error: string }[] = [];
    const sent: number[] = [];
    const nodesToWrite: WriteValueOptions[] = [];
    for (const c of changes) {
      const pos = this.posByIndex.get(c.index);
      const p = pos === undefined ? undefined : this.plan.points[pos];
      const node = pos === undefined ? undefined : l.nodes[pos];
      if (!p || !node || p.direction !== "output") {
        refused.push({ index: c.index, error: `point ${c.index} is not an output of ${this.name}` });
        continue;
      }
      let value = c.value;
      if (p.scale && typeof value === "number") {
        const raw = toRaw(value, p.scale);
        if (!raw.ok) {
          refused.push({ index: c.index, error: `${p.id}: ${raw.error}` });
          continue;
        }
        value = raw.raw;
      }
      const v = toVariant(node.builtin, value);
      if (!v.ok) {
        refused.push({ index: c.index, error: `${p.id}: ${v.error}` });
        continue;
      }
      nodesToWrite.push({ nodeId: node.nodeId, attributeId: AttributeIds.Value, value: { value: new Variant({ dataType: node.builtin, value: v.value }) } });
      sent.push(c.index);
    }
    const failed = refused.map((r) => r.index);
    const errors = refused.map((r) => r.error);
    let status: FailureStatus = "bad_config_error";
    if (nodesToWrite.length > 0) {
      let results;
      try {
        results = await withTimeout(l.session.write(nodesToWrite), this.cfg.timeout_ms, `${this.name}: Write`);
      } catch (e) {
        const timedOut = isCellioError(e, "CELLIO_ERR_OPCUA_TIMEOUT");
        if (timedOut) this.hooks.timedOut(l.gen);
        else this.hooks.fault(l.gen, `Write failed: ${errorMessage(e)}`);
        return { ok: false, status: timedOut ? "bad_timeout" : "bad_no_communication", error: errorMessage(e), failed: all };
      }
      this.hooks.ok();
      results.forEach((sc, k) => {
        if (sc.isGood()) return;
        const index = sent[k]!;
        const p = this.plan.points[this.posByIndex.get(index)!]!;
        if (failed.length === refused.length) status = toFailure(statusOfCode(sc.value));
        failed.push(index);
        errors.push(`${p.id}: the server refused the write (${sc.name})`);
      });
    }
    if (failed.length === 0) return { ok: true };
    return { ok: false, status, error: `${this.name}: ${errors.join("; ")}`, failed };
  }
}

function toFailure(s: ReturnType<typeof statusOfCode>): FailureStatus {
  return s === "good" || s === "uncertain_last_usable" || s === "bad_waiting_for_initial_data" ? "bad_device_failure" : s;
}

