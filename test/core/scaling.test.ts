import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { checkScaling, exceedsDeadband, toEngineering, toRaw, type Scaling } from "../../src/core/scaling.js";

const mA: Scaling = { gain: 0.1, offset: -40 };

describe("toEngineering", () => {
  it("is raw·gain + offset", () => {
    expect(toEngineering(0, mA)).toBe(-40);
    expect(toEngineering(1000, mA)).toBeCloseTo(60, 12);
    expect(toEngineering(-5, { gain: 2, offset: 1 })).toBe(-9);
    expect(toEngineering(7, { gain: 1, offset: 0 })).toBe(7);
  });
  it("clamps to the engineering limits", () => {
    const s: Scaling = { gain: 1, offset: 0, clamp: { min: 0, max: 100 } };
    expect(toEngineering(-3, s)).toBe(0);
    expect(toEngineering(250, s)).toBe(100);
    expect(toEngineering(50, s)).toBe(50);
    expect(toEngineering(Infinity, s)).toBe(100);
    expect(toEngineering(-Infinity, s)).toBe(0);
  });
  it("keeps NaN visible, clamp or not", () => {
    expect(toEngineering(NaN, mA)).toBeNaN();
    expect(toEngineering(NaN, { gain: 1, offset: 0, clamp: { min: 0, max: 1 } })).toBeNaN();
  });
});

describe("toRaw", () => {
  it("inverts toEngineering", () => {
    expect(toRaw(60, mA)).toEqual({ ok: true, raw: expect.closeTo(1000, 9) as number });
    expect(toRaw(-9, { gain: 2, offset: 1 })).toEqual({ ok: true, raw: -5 });
    fc.assert(
      fc.property(
        fc.double({ min: -1e6, max: 1e6, noNaN: true }),
        fc.double({ min: 1e-3, max: 1e3, noNaN: true }),
        fc.boolean(),
        fc.double({ min: -1e3, max: 1e3, noNaN: true }),
        (raw, g, neg, offset) => {
          const s: Scaling = { gain: neg ? -g : g, offset };
          const r = toRaw(toEngineering(raw, s), s);
          expect(r.ok).toBe(true);
          if (r.ok) expect(Math.abs(r.raw - raw)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(raw)) * Math.max(1, 1 / g));
        },
      ),
    );
  });
  it("refuses gain 0 and values outside the clamp range", () => {
    expect(toRaw(1, { gain: 0, offset: 0 })).toEqual({ ok: false, error: "cannot invert scaling with gain 0" });
    expect(toRaw(1, { gain: NaN, offset: 0 })).toMatchObject({ ok: false });
    const s: Scaling = { gain: 0.5, offset: 0, clamp: { min: 0, max: 100 } };
    expect(toRaw(120, s)).toEqual({ ok: false, error: "120 is outside the range 0..100" });
    expect(toRaw(-1, s)).toMatchObject({ ok: false });
    expect(toRaw(100, s)).toEqual({ ok: true, raw: 200 });
  });
  it("does not round (the caller rounds for integer registers)", () => {
    expect(toRaw(1, { gain: 3, offset: 0 })).toEqual({ ok: true, raw: 1 / 3 });
  });
});

describe("checkScaling", () => {
  it.each([
    [{ gain: 0, offset: 0 }, "gain must not be 0"],
    [{ gain: Infinity, offset: 0 }, "gain must be a finite number"],
    [{ gain: 1, offset: NaN }, "offset must be a finite number"],
    [{ gain: 1, offset: 0, clamp: { min: 5, max: 1 } }, "clamp min 5 is above clamp max 1"],
    [{ gain: 1, offset: 0, clamp: { min: NaN, max: 1 } }, "clamp limits must be numbers"],
  ])("%j", (s, want) => {
    expect(checkScaling(s)).toContain(want);
  });
  it("accepts a usable scaling", () => {
    expect(checkScaling({ gain: -0.5, offset: 3, clamp: { min: -1, max: -1 } })).toBeUndefined();
  });
});

describe("exceedsDeadband", () => {
  it.each([
    [undefined, 5, 1, true],
    [undefined, NaN, 1, true],
    [5, 5, 0, false],
    [5, 5.0001, 0, true],
    [5, 6, 1, false],
    [5, 4, 1, false],
    [5, 6.5, 1, true],
    [5, 3.5, 1, true],
    [0, -0, 0, false],
    [NaN, NaN, 1, false],
    [NaN, 5, 1, true],
    [5, NaN, 1, true],
    [5, NaN, Infinity, true],
    [Infinity, Infinity, 0, false],
    [Infinity, -Infinity, 1, true],
    [5, Infinity, 1e300, true],
    [5, 5.5, -1, true],
    [5, 5.5, NaN, true],
  ])("prev %s → next %s with deadband %s: %s", (prev, next, band, want) => {
    expect(exceedsDeadband(prev, next, band)).toBe(want);
  });
});
