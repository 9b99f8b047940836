/**
 * Timers and edges in virtual time: nowMs advances 10 ms per cycle, cycle k at k*10 ms.
 * Waveforms are strings, one character per cycle: "1" true, "0" false.
 */
import { describe, expect, it } from "vitest";
import type { CompiledExpr } from "../../../src/core/expr/index.js";
import type { Value } from "../../../src/core/sample.js";
import { compile, ctx } from "./helpers.js";

const STEP = 10;

/** Evaluate once per cycle with the points' waveforms; the result as a waveform. */
function run(e: CompiledExpr, waves: Readonly<Record<string, string>>, startMs = 0): string {
  const cycles = Math.max(...Object.values(waves).map((w) => w.length));
  let out = "";
  for (let k = 0; k < cycles; k++) {
    const values: Record<string, Value> = {};
    for (const [name, w] of Object.entries(waves)) values[name] = w[k] === "1";
    out += e.evaluate(ctx(values, startMs + k * STEP)) === true ? "1" : "0";
  }
  return out;
}

describe("ton: on-delay", () => {
  it("turns true at exactly the cycle where the delay has elapsed", () => {
    //                                           t=0    50
    expect(run(compile("ton(x, 50ms)"), { x: "11111111" })).toBe("00000111");
  });

  it("restarts after a one-cycle glitch", () => {
    expect(run(compile("ton(x, 50ms)"), { x: "1111011111111" })).toBe("0000000000111");
  });

  it("drops at once when its input drops", () => {
    expect(run(compile("ton(x, 20ms)"), { x: "11111001111" })).toBe("00111000011");
  });

  it("needs a whole delay when the input is true at the first evaluation", () => {
    expect(run(compile("ton(x, 1s)"), { x: "1".repeat(101) })).toBe("0".repeat(100) + "1");
  });

  it("counts in the context's time, not in cycles (a late cycle still counts its real time)", () => {
    const e = compile("ton(x, 50ms)");
    expect(e.evaluate(ctx({ x: true }, 1000))).toBe(false);
    expect(e.evaluate(ctx({ x: true }, 1049))).toBe(false);
    expect(e.evaluate(ctx({ x: true }, 1120))).toBe(true);
  });
});

describe("decimal delays", () => {
  it("time their exact value: ton(x, 16.1s) is true at 16100 ms, tof(x, 4.03s) false 4030 ms after x drops", () => {
    // 16.1 × 1000 is 16100.000000000002 and 4.03 × 1000 is 4030.0000000000005 in binary floating point: each one cycle late
    const on = compile("ton(x, 16.1s)");
    expect(on.evaluate(ctx({ x: true }, 0))).toBe(false);
    expect(on.evaluate(ctx({ x: true }, 16_090))).toBe(false);
    expect(on.evaluate(ctx({ x: true }, 16_100))).toBe(true);
    const off = compile("tof(x, 4.03s)");
    expect(off.evaluate(ctx({ x: true }, 0))).toBe(true);
    expect(off.evaluate(ctx({ x: false }, 10))).toBe(true);
    expect(off.evaluate(ctx({ x: false }, 4030))).toBe(true);
    expect(off.evaluate(ctx({ x: false }, 4040))).toBe(false);
  });
});

describe("tof: off-delay", () => {
  it("follows its input up and holds it for the delay after it drops", () => {
    expect(run(compile("tof(x, 30ms)"), { x: "0011100000" })).toBe("0011111100");
  });

  it("behaves as the README says: x dropping at t = 30 holds up to t = 50, false from t = 60", () => {
    expect(run(compile("tof(x, 30ms)"), { x: "11100000" })).toBe("11111100");
  });

  it("is false while its input has never been true", () => {
    expect(run(compile("tof(x, 30ms)"), { x: "00000" })).toBe("00000");
  });

  it("re-triggers: a return of the input during the hold restarts the hold from the next drop", () => {
    expect(run(compile("tof(x, 30ms)"), { x: "1001000000" })).toBe("1111111000");
  });
});

describe("rising / falling", () => {
  it("rising is false on the first evaluation, then true for one evaluation per edge", () => {
    expect(run(compile("rising(x)"), { x: "1101101" })).toBe("0001001");
    expect(run(compile("rising(x)"), { x: "0101100" })).toBe("0101000");
  });

  it("falling likewise", () => {
    expect(run(compile("falling(x)"), { x: "0100110" })).toBe("0010001");
    expect(run(compile("falling(x)"), { x: "1011" })).toBe("0100");
  });
});

describe("stateful functions are updated every evaluation, whatever and/or skip", () => {
  it("a timer behind a false 'and' keeps timing", () => {
    //                                          go false for 4 cycles, x true from t=0
    expect(run(compile("go and ton(x, 20ms)"), { go: "000011", x: "111111" })).toBe("000011");
  });

  it("a timer behind a true 'or' keeps timing", () => {
    expect(run(compile("go or ton(x, 20ms)"), { go: "111100", x: "111111" })).toBe("111111");
  });

  it("an edge behind a true 'or' is consumed while hidden", () => {
    // x rises at cycle 1 while go hides it; at cycle 3 there is no edge left to see.
    expect(run(compile("go or rising(x)"), { go: "1100", x: "0111" })).toBe("1100");
  });

  it("two edges of the same point in one expression each see the edge", () => {
    expect(run(compile("rising(x) and rising(x)"), { x: "0101" })).toBe("0101");
  });
});

describe("stateful inside stateful", () => {
  it("rising(ton(...)) fires once, at the cycle the timer goes true", () => {
    expect(run(compile("rising(ton(x, 30ms))"), { x: "1111111" })).toBe("0001000");
  });

  it("tof(rising(...)) stretches a one-cycle pulse", () => {
    expect(run(compile("tof(rising(x), 20ms)"), { x: "0111111" })).toBe("0111000");
  });

  it("ton(rising(...)) never sees a pulse last long enough", () => {
    expect(run(compile("ton(rising(x), 10ms)"), { x: "0101010" })).toBe("0000000");
  });
});

describe("reset", () => {
  it("forgets timers and edges, as if never evaluated", () => {
    const e = compile("ton(x, 20ms) or rising(go)");
    expect(run(e, { x: "1111", go: "0001" })).toBe("0011");
    e.reset();
    // A running timer starts over; go was high and is still high, but the first evaluation after reset sees no edge.
    expect(run(e, { x: "1111", go: "1111" }, 40)).toBe("0011");
  });

  it("resets a holding off-delay", () => {
    const e = compile("tof(x, 100ms)");
    expect(run(e, { x: "10" })).toBe("11");
    e.reset();
    expect(run(e, { x: "00" }, 20)).toBe("00");
  });
});

describe("falseTerms does not advance timers or edges", () => {
  it("reports the same terms however often it is asked, and the next evaluation is on schedule", () => {
    const e = compile("door.closed and ton(x, 50ms) and not rising(go)");
    for (let k = 0; k < 4; k++) e.evaluate(ctx({ "door.closed": true, x: true }, k * STEP));
    const c = ctx({ "door.closed": true, x: true, go: true }, 30);
    for (let n = 0; n < 3; n++) expect(e.falseTerms(c)).toEqual(["ton(x, 50ms)"]);
    // Asking with a later time or a changed image does not move the timer or consume an edge either.
    expect(e.falseTerms(ctx({ "door.closed": true, x: true, go: true }, 10_000))).toEqual(["ton(x, 50ms)"]);
    expect(e.evaluate(ctx({ "door.closed": true, x: true }, 40))).toBe(false);
    expect(e.evaluate(ctx({ "door.closed": true, x: true }, 50))).toBe(true);
    expect(e.evaluate(ctx({ "door.closed": true, x: true, go: true }, 60))).toBe(false);
    expect(e.falseTerms(ctx({ "door.closed": true, x: true, go: true }, 60))).toEqual(["not rising(go)"]);
  });
});
