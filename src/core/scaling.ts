/**
 * Linear scaling between a device's raw number and the engineering value the
 * cell works with, and the deadband test for "has this value changed enough
 * to publish". Pure.
 */

export interface Scaling {
  readonly gain: number;
  readonly offset: number;
  /** Engineering-value limits: reads are clamped to them, writes outside them are refused. */
  readonly clamp?: { readonly min: number; readonly max: number };
}

export type ToRawResult = { ok: true; raw: number } | { ok: false; error: string };

/** A configuration problem with `s`, or undefined when it is usable. */
export function checkScaling(s: Scaling): string | undefined {
  if (!Number.isFinite(s.gain)) return `gain must be a finite number, got ${s.gain}`;
  if (s.gain === 0) return "gain must not be 0 (writes could not be converted back)";
  if (!Number.isFinite(s.offset)) return `offset must be a finite number, got ${s.offset}`;
  if (s.clamp !== undefined) {
    const { min, max } = s.clamp;
    if (Number.isNaN(min) || Number.isNaN(max)) return "clamp limits must be numbers";
    if (min > max) return `clamp min ${min} is above clamp max ${max}`;
  }
  return undefined;
}

/** raw·gain + offset, then clamped. NaN stays NaN (the clamp does not hide it). */
export function toEngineering(raw: number, s: Scaling): number {
  const v = raw * s.gain + s.offset;
  if (s.clamp === undefined || Number.isNaN(v)) return v;
  if (v < s.clamp.min) return s.clamp.min;
  if (v > s.clamp.max) return s.clamp.max;
  return v;
}

/**
 * The raw value to write for engineering value `eng`: (eng − offset) / gain.
 * A value outside the clamp range is refused rather than silently changed.
 * The result is not rounded: the caller rounds for integer registers (and the
 * codec refuses a non-integer or out-of-range value for them).
 */
export function toRaw(eng: number, s: Scaling): ToRawResult {
  if (s.gain === 0 || !Number.isFinite(s.gain)) return { ok: false, error: `cannot invert scaling with gain ${s.gain}` };
  if (s.clamp !== undefined && (eng < s.clamp.min || eng > s.clamp.max)) {
    return { ok: false, error: `${eng} is outside the range ${s.clamp.min}..${s.clamp.max}` };
  }
  return { ok: true, raw: (eng - s.offset) / s.gain };
}

/**
 * True when `next` should be reported after `prev`: there was no previous
 * value, the difference is more than `deadband`, or one of them is NaN and
 * the other is not, or one of them is infinite (and they differ). Equal values (including +0/−0 and equal infinities) are
 * never a change; a deadband of 0 (or less, or NaN) reports every change.
 */
export function exceedsDeadband(prev: number | undefined, next: number, deadband: number): boolean {
  if (prev === undefined) return true;
  if (prev === next) return false;
  const prevNaN = Number.isNaN(prev);
  const nextNaN = Number.isNaN(next);
  if (prevNaN || nextNaN) return prevNaN !== nextNaN;
  if (!Number.isFinite(prev) || !Number.isFinite(next)) return true;
  const band = deadband > 0 ? deadband : 0;
  return Math.abs(next - prev) > band;
}
