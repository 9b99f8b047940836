/**
 * Durations written as decimals ("16.1s", "4.1min", "1.5e3ms") in whole
 * milliseconds where the decimal says so. `Number("16.1") * 1000` is
 * 16100.000000000002 in binary floating point (2.01 × 1000 is
 * 2009.9999999999998): a timer or a step timeout of 16.1 s then ends one
 * cycle late and its message reads "16100.000000000002 ms".
 */

const DECIMAL = /^(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

/**
 * The decimal number `text` times the integer `factor` (a unit's length in
 * ms), rounded once: the double nearest to the exact product. The digits are
 * multiplied as integers and the decimal point is placed by the exponent of
 * the text that Number() then parses (string to number is correctly rounded).
 */
export function decimalTimes(text: string, factor: number): number {
  const m = DECIMAL.exec(text);
  if (m === null || !Number.isSafeInteger(factor)) return Number(text) * factor;
  const frac = m[2] ?? "";
  const digits = BigInt(m[1]! + frac) * BigInt(factor);
  return Number(`${digits}e${Number(m[3] ?? "0") - frac.length}`);
}
