/**
 * The synchronous command path between the north worker and the loop's
 * thread, on one thread (Node allows Atomics.wait on the main thread too):
 * an answered request returns the router's result; a request nobody takes in
 * time is refused as busy AND is never submitted afterwards.
 */
import { describe, expect, it } from "vitest";
import type { Caller, Command, CommandResult } from "../../../src/core/commands.js";
import type { CommandRequest } from "../../../src/north/host/protocol.js";
import { SyncCommandClient, answerCommand, createShared } from "../../../src/north/host/sync-call.js";

const cmd: Command = { kind: "reset_interlock", id: "door" };
const caller: Caller = { role: "operator", caller: "test", nowMs: 1 };

describe("SyncCommandClient / answerCommand", () => {
  it("returns what the router answered, long reasons included", () => {
    const shared = createShared();
    const seen: Command[] = [];
    const refused: CommandResult = { accepted: false, code: "interlocked", reason: `permit is still false: ${"x".repeat(200)} é` };
    const client = new SyncCommandClient(
      shared,
      (req) =>
        answerCommand(shared, req, (c) => {
          seen.push(c);
          return refused;
        }),
      1000,
    );
    expect(client.submit(cmd, caller)).toEqual(refused);
    expect(seen).toEqual([cmd]);
    expect(client.submit(cmd, caller)).toEqual(refused); // the slot is reusable
  });

  it("refuses as busy when nobody answers in time, and the late request is never submitted", () => {
    const shared = createShared();
    let pending: CommandRequest | undefined;
    const client = new SyncCommandClient(shared, (req) => (pending = req), 30);
    const r = client.submit(cmd, caller);
    expect(r).toMatchObject({ accepted: false, code: "busy" });
    let submitted = 0;
    answerCommand(shared, pending!, () => {
      submitted++;
      return { accepted: true };
    });
    expect(submitted).toBe(0);
  });

  it("does not submit a late request after a later one was answered", () => {
    const shared = createShared();
    let first: CommandRequest | undefined;
    const client = new SyncCommandClient(shared, (req) => (first ??= req), 20);
    client.submit(cmd, caller); // abandoned
    let n = 0;
    const second = new SyncCommandClient(shared, (req) => answerCommand(shared, req, () => (n++, { accepted: true })), 1000);
    expect(second.submit(cmd, caller)).toEqual({ accepted: true });
    answerCommand(shared, first!, () => (n++, { accepted: true }));
    expect(n).toBe(1);
  });
});
