/**
 * Config errors that name the YAML path and line:column, all at once.
 */
import { isMap, isScalar, isSeq, LineCounter, type Document, type Node, type Scalar } from "yaml";

export interface ConfigIssue {
  /** Dotted path in the config, e.g. devices.io1.points.door.address */
  readonly path: string;
  readonly line: number;
  readonly col: number;
  readonly message: string;
}

export class ConfigError extends Error {
  readonly code = "CELLIO_ERR_CONFIG";
  constructor(
    readonly file: string,
    readonly issues: readonly ConfigIssue[],
  ) {
    super(`CELLIO_ERR_CONFIG: ${file}: ${issues.length} problem(s)\n${formatIssues(file, issues)}`);
    this.name = "ConfigError";
  }
}

export function formatIssues(file: string, issues: readonly ConfigIssue[]): string {
  return issues.map((i) => `${file}:${i.line}:${i.col}: ${i.path || "(root)"}: ${i.message}`).join("\n");
}

export type PathKey = string | number;

export function pathString(path: readonly PathKey[]): string {
  return path.map((p) => String(p)).join(".");
}

/** Locates config paths (and offsets inside string scalars) in the YAML source. */
export class SourceMap {
  constructor(
    private readonly doc: Document | undefined,
    private readonly lines: LineCounter,
    /** The YAML source; with it, positions inside escaped and multi-line strings are exact. */
    private readonly text?: string,
  ) {}

  private pos(offset: number): { line: number; col: number } {
    return this.lines.linePos(offset);
  }

  /** The node at `path`, or the deepest existing ancestor. */
  private nodeAt(path: readonly PathKey[]): { node: Node | undefined; exact: boolean } {
    let node: unknown = this.doc?.contents;
    for (let i = 0; i < path.length; i++) {
      const key = path[i];
      let next: unknown;
      if (isMap(node)) {
        next = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(key))?.value;
      } else if (isSeq(node) && typeof key === "number") {
        next = node.items[key];
      }
      if (next === undefined || next === null) return { node: node as Node | undefined, exact: false };
      node = next;
    }
    return { node: node as Node | undefined, exact: true };
  }

  /** Position of the value at path (or its closest ancestor). */
  locate(path: readonly PathKey[]): { line: number; col: number } {
    const { node } = this.nodeAt(path);
    const start = node?.range?.[0];
    return start === undefined ? { line: 1, col: 1 } : this.pos(start);
  }

  /** Position of the KEY `key` inside the map at path (for unknown keys). */
  locateKey(path: readonly PathKey[], key: string): { line: number; col: number } {
    const { node, exact } = this.nodeAt(path);
    if (exact && isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
      const start = isScalar(pair?.key) ? pair.key.range?.[0] : undefined;
      if (start !== undefined) return this.pos(start);
    }
    return this.locate(path);
  }

  /**
   * Position of character `offset` inside the string scalar at path (for
   * errors inside expressions). With the source text: exact for one-line
   * scalars (escapes included) and for multi-line ones without escapes or
   * blank lines; otherwise the start of the string.
   */
  locateInString(path: readonly PathKey[], offset: number): { line: number; col: number } {
    const { node, exact } = this.nodeAt(path);
    if (exact && isScalar(node) && node.range && typeof node.value === "string") {
      const quoted = node.type === "QUOTE_DOUBLE" || node.type === "QUOTE_SINGLE";
      const isBlock = node.type === "BLOCK_LITERAL" || node.type === "BLOCK_FOLDED";
      if (this.text === undefined) {
        if (!isBlock) return this.pos(node.range[0] + (quoted ? 1 : 0) + offset);
      } else {
        const at = sourceOffset(this.text, node.type, node.range[0], node.range[1], node.value, offset);
        if (at !== undefined) return this.pos(at);
      }
    }
    return this.locate(path);
  }

  issue(path: readonly PathKey[], message: string): ConfigIssue {
    return { path: pathString(path), ...this.locate(path), message };
  }
}

/** Source offset of the UTF-16 unit `offset` of a scalar's value, when it can be mapped exactly. */
function sourceOffset(text: string, type: Scalar.Type | undefined, start: number, end: number, value: string, offset: number): number | undefined {
  const src = text.slice(start, end).replace(/\r?\n$/, "");
  const quote = type === "QUOTE_DOUBLE" || type === "QUOTE_SINGLE" ? 1 : 0;
  if (!src.includes("\n")) {
    // One line: walk the source, one escape at a time.
    let i = start + quote;
    for (let n = 0; n < offset; n++) {
      const c = text[i];
      if (c === undefined || c === "\n") return undefined;
      if (type === "QUOTE_DOUBLE" && c === "\\") i += ({ x: 4, u: 6, U: 10 } as Record<string, number>)[text[i + 1] ?? ""] ?? 2;
      else if (type === "QUOTE_SINGLE" && c === "'" && text[i + 1] === "'") i += 2;
      else i += 1;
    }
    return i;
  }
  // Several lines: each source line is one segment of the value, joined by a
  // newline (literal block) or a space (folded block, plain, quoted). Checked
  // against the parsed value, so escapes, blank lines and odd folding fall back.
  if (quote === 1 && (src.includes("\\") || src.includes("''"))) return undefined;
  const segments: { at: number; text: string }[] = [];
  let lineStart = start;
  for (const [k, raw] of src.split("\n").entries()) {
    const line = raw.replace(/\r$/, "");
    if (type === "BLOCK_LITERAL" || type === "BLOCK_FOLDED") {
      if (k > 0) segments.push({ at: lineStart, text: line });
    } else {
      const from = k === 0 ? quote : line.length - line.trimStart().length;
      segments.push({ at: lineStart + from, text: line.slice(from).trimEnd() });
    }
    lineStart += raw.length + 1;
  }
  if (type === "BLOCK_LITERAL" || type === "BLOCK_FOLDED") {
    while (segments.length > 0 && segments[segments.length - 1]!.text.trim() === "") segments.pop();
    const indent = Math.min(...segments.map((s) => s.text.length - s.text.trimStart().length));
    for (const s of segments) {
      s.at += indent;
      s.text = s.text.slice(indent);
    }
  } else if (quote === 1) {
    const last = segments[segments.length - 1];
    if (last) last.text = last.text.slice(0, -1);
  }
  const joined = segments.map((s) => s.text).join(type === "BLOCK_LITERAL" ? "\n" : " ");
  if (joined !== value.replace(/\n+$/, "")) return undefined;
  let rest = offset;
  for (const s of segments) {
    if (rest <= s.text.length) return s.at + rest;
    rest -= s.text.length + 1;
  }
  return undefined;
}
