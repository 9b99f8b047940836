/**
 * Engineering units of points: the UNECE code (OPC 10000-8 EUInformation)
 * for the units engineers write in configs, and which points are analog.
 */
import { makeEUInformation, standardUnits } from "node-opcua";
import type { PointView } from "./ports.js";

const UNITS: Readonly<Record<string, keyof typeof standardUnits>> = {
  bar: "bar",
  mbar: "millibar",
  Pa: "pascal",
  hPa: "hectopascal",
  kPa: "kilopascal",
  MPa: "megapascal",
  mm: "millimetre",
  cm: "centimetre",
  m: "metre",
  degC: "degree_celsius",
  "°C": "degree_celsius",
  degF: "degree_fahrenheit",
  "°F": "degree_fahrenheit",
  K: "kelvin",
  g: "gram",
  kg: "kilogram",
  "m/s": "metre_per_second",
  "m/s2": "metre_per_second_squared",
  "km/h": "kilometre_per_hour",
  Hz: "hertz",
  kHz: "kilohertz",
  rpm: "revolutions_per_minute",
  N: "newton",
  W: "watt",
  kW: "kilowatt",
  A: "ampere",
  V: "volt",
  "%": "percent",
  s: "second",
  ms: "millisecond",
  us: "microsecond",
  min: "minute",
  deg: "degree",
  "°": "degree",
  "m3/h": "cubic_metre_per_hour",
  J: "joule",
  ppm: "part_per_million",
};

/** EUInformation for a config unit: the UNECE code when cellio knows it, else the unit text with unitId -1. */
export function engineeringUnits(unit: string): ReturnType<typeof makeEUInformation> {
  const known = UNITS[unit];
  if (known !== undefined) return standardUnits[known];
  const eu = makeEUInformation("", unit, unit);
  eu.unitId = -1; // OPC 10000-8: -1 when there is no UNECE code for it
  return eu;
}

/** A point is an AnalogItem when it is a float, or a scaled or unit-carrying int. */
export function isAnalog(p: PointView): boolean {
  return p.kind === "float" || (p.kind === "int" && (p.scale !== undefined || p.unit !== undefined));
}
