/**
 * One metric family as Prometheus text (0.0.4), byte for byte as prom-client
 * 15's Registry renders it (HELP, TYPE, a line per sample; the same escapes,
 * `Nan`/`+Inf`/`-Inf` values), except for how numbers become text.
 *
 * `${n}`, String(n) and n.toString() go through V8's number-to-string cache
 * (16,384 slots, a heap root): the text of a non-integer number is allocated
 * straight in the old generation, that of an integer stays in its slot until
 * another number takes it, so across scavenges and into the old generation. A
 * scrape turns about 1,500 numbers into text, most of them new each time
 * (counters, histogram buckets): at 5 scrapes/s on the 32-device fleet that
 * was 21 MB of old-generation garbage a minute and a mark-compact of up to
 * 10 ms on the loop's thread every minute or so (test/bench/REPORT.md).
 * JSON.stringify writes a finite number with the same digits (ECMA-262
 * Number::toString in both) into a fresh string that dies young.
 */

/** A sample as prom-client's `metric.get()` gives it (no shared labels, no exemplar: cellio's own families). */
export interface Sample {
  value: number;
  labels?: Record<string, string | number>;
  metricName?: string;
}

export interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: string;
  readonly values: readonly Sample[];
}

/** A number as `${n}` writes it, without the number-to-string cache. */
export function numberText(n: number): string {
  return Number.isFinite(n) ? JSON.stringify(n) : String(n); // NaN and ±Infinity: three constant strings
}

/** A sample's value as prom-client writes it (its spelling of NaN is `Nan`). */
function valueText(v: number): string {
  if (Number.isNaN(v)) return "Nan";
  if (!Number.isFinite(v)) return v < 0 ? "-Inf" : "+Inf";
  return JSON.stringify(v);
}

function escapeString(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function labelText(v: string | number): string {
  return typeof v === "string" ? escapeString(v).replace(/"/g, '\\"') : numberText(v);
}

/** The family's lines joined by newlines, no trailing newline (prom-client's getSingleMetricAsString). */
export function renderFamily(f: Family): string {
  const name = escapeString(f.name);
  const lines = [`# HELP ${name} ${escapeString(f.help)}`, `# TYPE ${name} ${f.type}`];
  for (const s of f.values) {
    const { metricName = name, labels = {} } = s;
    let line = metricName;
    let sep = "{";
    for (const k of Object.keys(labels)) {
      line += `${sep}${k}="${labelText(labels[k]!)}"`;
      sep = ",";
    }
    if (sep === ",") line += "}";
    lines.push(`${line} ${valueText(s.value)}`);
  }
  return lines.join("\n");
}
