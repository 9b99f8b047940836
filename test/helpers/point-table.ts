/**
 * A hand-made point table for pure tests of logic, sequences, interlocks and
 * commands: points from [id, kind, direction, safe?] rows, their index, and an
 * expression environment over them.
 */
import { defaultSafe, type Direction, type PointDef, type PointKind } from "../../src/core/points.js";
import type { Value } from "../../src/core/sample.js";
import type { ExprEnv } from "../../src/core/expr/index.js";

export type PointSpec = readonly [id: string, kind: PointKind, direction: Direction, safe?: Value];

export interface PointTable {
  readonly points: PointDef[];
  readonly idx: Map<string, number>;
  readonly env: ExprEnv;
  at(id: string): number;
}

export function pointTable(spec: readonly PointSpec[]): PointTable {
  const points: PointDef[] = spec.map(([id, kind, direction, safe], index) => ({
    index,
    id,
    device: id.split(".")[0]!,
    name: id.split(".")[1]!,
    kind,
    direction,
    safe: direction === "input" ? null : (safe ?? defaultSafe(kind)),
    unit: undefined,
    description: undefined,
    scale: undefined,
    deadband: 0,
    address: "",
    heartbeat: undefined,
    operatorWritable: false,
  }));
  const idx = new Map(points.map((p) => [p.id, p.index]));
  const env: ExprEnv = {
    resolve: (n) => {
      const i = idx.get(n);
      return i === undefined ? undefined : { index: i, type: points[i]!.kind };
    },
    names: () => idx.keys(),
  };
  return { points, idx, env, at: (id) => idx.get(id)! };
}
