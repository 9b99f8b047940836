/**
 * Config errors that name the YAML path and line:column, all at once.
 */
import { isMap, isScalar, isSeq, LineCounter, type Document, type Node } from "yaml";

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
   * errors inside expressions). Exact for plain and quoted one-line scalars.
   */
  locateInString(path: readonly PathKey[], offset: number): { line: number; col: number } {
    const { node, exact } = this.nodeAt(path);
    if (exact && isScalar(node) && node.range) {
      const quoted = node.type === "QUOTE_DOUBLE" || node.type === "QUOTE_SINGLE";
      const isBlock = node.type === "BLOCK_LITERAL" || node.type === "BLOCK_FOLDED";
      if (!isBlock) return this.pos(node.range[0] + (quoted ? 1 : 0) + offset);
    }
    return this.locate(path);
  }

  issue(path: readonly PathKey[], message: string): ConfigIssue {
    return { path: pathString(path), ...this.locate(path), message };
  }
}
