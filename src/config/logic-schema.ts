/**
 * Config sections for interlocks, sequences and latches: the zod schemas
 * (shape, types, JSON Schema) and the compile functions that check them
 * against the point table and build the pure engines' definitions
 * (src/core/interlocks.ts, src/core/sequences.ts). Every problem is reported
 * with its YAML path and line, all at once.
 */
import { z } from "zod";
import { name } from "./common.js";
import { pathString, type ConfigIssue, type PathKey, type SourceMap } from "./issues.js";
import { compileExpression, type CompiledExpr, type ExprEnv } from "../core/expr/index.js";
import { closest } from "../core/expr/check.js";
import { decimalTimes } from "../core/duration.js";
import { valueFits, type PointDef } from "../core/points.js";
import type { Value } from "../core/sample.js";
import type { ForcedOutput, InterlockDef } from "../core/interlocks.js";
import type { LatchDef, SequenceDef, StepDef, TransitionDef } from "../core/sequences.js";

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|min|h)$/;
const UNIT_MS = { ms: 1, s: 1000, min: 60_000, h: 3_600_000 } as const;

/** `10s`, `500ms`, `2min`, `1h`, or a number of ms; parsed to ms. */
export const durationSchema = z
  .union([z.number().positive(), z.string().regex(DURATION_RE, 'a duration like "500ms", "10s", "2min" or "1h", or a number of ms')])
  .transform((v) => {
    if (typeof v === "number") return v;
    const m = DURATION_RE.exec(v)!;
    return decimalTimes(m[1]!, UNIT_MS[m[2] as keyof typeof UNIT_MS]); // 16.1s is 16100, not 16.1 * 1000
  })
  .describe('Duration: "500ms", "10s", "2min", "1h", or a number of milliseconds');

const value = z.union([z.boolean(), z.number(), z.string()]);
const expression = (what: string) => z.string().min(1).describe(what);

export const interlockSchema = z
  .object({
    description: z.string().optional().describe("What the interlock protects, for operators"),
    permit: expression("Bool expression: the interlock is permitted while it is true and every point it references is good"),
    force: z
      .union([
        z.array(z.string()).describe("Outputs forced to their safe values while tripped"),
        z.record(z.string(), value).describe("Outputs and the values they are forced to while tripped"),
      ])
      .describe("Outputs forced while tripped: a list (safe values) or a map of output to value"),
    latch: z.boolean().default(false).describe("Stay tripped until reset, and accept a reset only while the permit is true"),
    reset_roles: z
      .array(z.enum(["operator", "engineer"]))
      .min(1)
      .default(["operator", "engineer"])
      .describe("Roles that may reset it (an engineer always may)"),
  })
  .strict()
  .describe("A process interlock");

export const stepSchema = z
  .object({
    description: z.string().optional().describe("What happens in this step"),
    actions: z.record(z.string(), value).default({}).describe("Outputs held at these values while the step is active"),
    timeout: durationSchema.optional().describe("Go to the sequence's fault_step when the step is active this long"),
  })
  .strict();

export const transitionSchema = z
  .object({
    from: name("step name").describe("Step the transition leaves"),
    to: name("step name").describe("Step the transition enters"),
    when: expression("Bool expression; the first true transition of the active step is taken"),
    description: z.string().optional(),
  })
  .strict();

export const sequenceSchema = z
  .object({
    description: z.string().optional().describe("What the sequence does"),
    initial: name("step name").describe("Step at start and after a reset"),
    fault_step: name("step name").optional().describe("Step a timed-out step goes to"),
    steps: z.record(name("step name"), stepSchema).describe("Steps by name"),
    transitions: z.array(transitionSchema).default([]).describe("Transitions, evaluated in this order"),
    retain: z
      .boolean()
      .default(false)
      .describe("Keep the active step over a restart (state file); otherwise the sequence starts at its initial step"),
  })
  .strict()
  .describe("An SFC-style sequence: one active step");

export const latchSchema = z
  .object({
    description: z.string().optional(),
    set: expression("Bool expression that sets the latch"),
    reset: expression("Bool expression that resets it (reset wins over set)"),
  })
  .strict()
  .describe("Set/reset latch on a bool output or memory point, reset dominant");

export const interlocksSectionSchema = z.record(name("interlock id"), interlockSchema).default({}).describe("Process interlocks by id");
export const sequencesSectionSchema = z.record(name("sequence id"), sequenceSchema).default({}).describe("Sequences by id");
export const latchesSectionSchema = z.record(z.string(), latchSchema).default({}).describe('Latches: "<device>.<point>": {set, reset}');

export type InterlocksConfig = z.infer<typeof interlocksSectionSchema>;
export type SequencesConfig = z.infer<typeof sequencesSectionSchema>;
export type LatchesConfig = z.infer<typeof latchesSectionSchema>;

type Issues = ConfigIssue[];

function keyIssue(map: SourceMap, path: readonly PathKey[], key: string, message: string): ConfigIssue {
  return { path: pathString([...path, key]), ...map.locateKey(path, key), message };
}

/** The point named `id`, or an issue at `report` (with a suggestion). */
function lookup(id: string, env: ExprEnv, points: readonly PointDef[], report: (msg: string) => void): PointDef | undefined {
  const r = env.resolve(id);
  const p = r === undefined ? undefined : points[r.index];
  if (p === undefined) {
    const hint = closest(id, env.names());
    report(`unknown point "${id}"${hint ? ` (did you mean "${hint}"?)` : ""}`);
  }
  return p;
}

function expr(source: string, env: ExprEnv, path: readonly PathKey[], map: SourceMap, issues: Issues): CompiledExpr | undefined {
  const r = compileExpression(source, env, { expect: "bool", allowStateful: true });
  if (r.ok) return r.expr;
  for (const e of r.errors) issues.push({ path: pathString(path), ...map.locateInString(path, e.offset), message: e.message });
  return undefined;
}

/** The value an output is driven to (`v`, or its safe value), or an issue; `what` completes "<point> is an input; <what> only outputs". */
function outputValue(p: PointDef, v: Value | undefined, what: string, report: (msg: string) => void): ForcedOutput | undefined {
  if (p.direction !== "output") {
    report(`"${p.id}" is ${p.direction === "input" ? "an input" : "a memory point"}; ${what} only outputs`);
    return undefined;
  }
  const val = v ?? p.safe;
  if (val === null || !valueFits(p.kind, val) || (typeof val === "number" && !Number.isFinite(val))) {
    report(`${JSON.stringify(val)} does not fit ${p.id} (${p.kind})`);
    return undefined;
  }
  return { index: p.index, value: val };
}

export function compileInterlocks(
  section: InterlocksConfig,
  env: ExprEnv,
  points: readonly PointDef[],
  map: SourceMap,
  issues: Issues,
  root: readonly PathKey[] = ["interlocks"],
): InterlockDef[] {
  const out: InterlockDef[] = [];
  const forcedAt = new Map<number, { value: Value; id: string }>();
  for (const [id, cfg] of Object.entries(section)) {
    const base = [...root, id];
    const permit = expr(cfg.permit, env, [...base, "permit"], map, issues);
    type Entry = { pid: string; v: Value | undefined; report: (msg: string) => void };
    const entries: Entry[] = Array.isArray(cfg.force)
      ? cfg.force.map((pid, i) => ({ pid, v: undefined, report: (msg: string) => void issues.push(map.issue([...base, "force", i], msg)) }))
      : Object.entries(cfg.force).map(([pid, v]) => ({ pid, v, report: (msg: string) => void issues.push(keyIssue(map, [...base, "force"], pid, msg)) }));
    if (entries.length === 0) issues.push(map.issue([...base, "force"], "force names no outputs"));
    const force: ForcedOutput[] = [];
    for (const { pid, v, report } of entries) {
      const p = lookup(pid, env, points, report);
      const f = p && outputValue(p, v, "an interlock forces", report);
      if (!f) continue;
      if (force.some((x) => x.index === f.index)) {
        report(`${pid} is listed twice`);
        continue;
      }
      const other = forcedAt.get(f.index);
      if (other && other.value !== f.value) {
        report(`${pid} is forced to ${JSON.stringify(f.value)} here but to ${JSON.stringify(other.value)} by interlock ${other.id}; interlocks forcing one output must agree`);
        continue;
      }
      forcedAt.set(f.index, { value: f.value, id });
      force.push(Object.freeze(f));
    }
    if (permit) {
      out.push(
        Object.freeze({ id, description: cfg.description, permit, force: Object.freeze(force), latch: cfg.latch, resetRoles: Object.freeze([...cfg.reset_roles]) }),
      );
    }
  }
  return out;
}

export function compileSequences(
  section: SequencesConfig,
  env: ExprEnv,
  points: readonly PointDef[],
  map: SourceMap,
  issues: Issues,
  root: readonly PathKey[] = ["sequences"],
): SequenceDef[] {
  const out: SequenceDef[] = [];
  for (const [id, cfg] of Object.entries(section)) {
    const base = [...root, id];
    const names = Object.keys(cfg.steps);
    const indexOf = (step: string, path: readonly PathKey[], what: string): number | undefined => {
      const i = names.indexOf(step);
      if (i < 0) {
        const hint = closest(step, names);
        issues.push(map.issue(path, `${what} "${step}" is not one of the steps${hint ? ` (did you mean "${hint}"?)` : ""}`));
        return undefined;
      }
      return i;
    };
    let ok = true;
    if (names.length === 0) {
      issues.push(map.issue([...base, "steps"], "a sequence needs at least one step"));
      continue;
    }
    const initial = indexOf(cfg.initial, [...base, "initial"], "initial step");
    const faultStep = cfg.fault_step === undefined ? undefined : indexOf(cfg.fault_step, [...base, "fault_step"], "fault_step");
    if (initial === undefined || (cfg.fault_step !== undefined && faultStep === undefined)) ok = false;
    const transitions: TransitionDef[][] = names.map(() => []);
    cfg.transitions.forEach((t, i) => {
      const tp = [...base, "transitions", i];
      const from = indexOf(t.from, [...tp, "from"], "step");
      const to = indexOf(t.to, [...tp, "to"], "step");
      if (from !== undefined && from === to) issues.push(map.issue([...tp, "to"], `a transition from ${t.from} to itself`));
      const when = expr(t.when, env, [...tp, "when"], map, issues);
      if (from === undefined || to === undefined || from === to || !when) ok = false;
      else transitions[from]!.push(Object.freeze({ to, when }));
    });
    const steps: StepDef[] = names.map((stepName, si) => {
      const sc = cfg.steps[stepName]!;
      const sp = [...base, "steps", stepName];
      if (sc.timeout !== undefined && cfg.fault_step === undefined) {
        issues.push(map.issue([...sp, "timeout"], "a step timeout needs the sequence's fault_step (where a timed-out step goes)"));
        ok = false;
      }
      if (sc.timeout !== undefined && si === faultStep) {
        issues.push(map.issue([...sp, "timeout"], "the fault step cannot have a timeout"));
        ok = false;
      }
      const actions: ForcedOutput[] = [];
      for (const [pid, v] of Object.entries(sc.actions)) {
        const report = (msg: string): void => {
          issues.push(keyIssue(map, [...sp, "actions"], pid, msg));
          ok = false;
        };
        const p = lookup(pid, env, points, report);
        const a = p && outputValue(p, v, "sequence actions drive", report);
        if (a) actions.push(Object.freeze(a));
      }
      return Object.freeze({ name: stepName, actions: Object.freeze(actions), timeoutMs: sc.timeout, transitions: Object.freeze(transitions[si]!) });
    });
    if (ok && initial !== undefined) out.push(Object.freeze({ id, description: cfg.description, initial, faultStep, steps: Object.freeze(steps), retain: cfg.retain }));
  }
  return out;
}

export function compileLatches(
  section: LatchesConfig,
  env: ExprEnv,
  points: readonly PointDef[],
  map: SourceMap,
  issues: Issues,
  root: readonly PathKey[] = ["latches"],
): LatchDef[] {
  const out: LatchDef[] = [];
  for (const [pid, cfg] of Object.entries(section)) {
    const report = (msg: string): void => void issues.push(keyIssue(map, root, pid, msg));
    const p = lookup(pid, env, points, report);
    const set = expr(cfg.set, env, [...root, pid, "set"], map, issues);
    const reset = expr(cfg.reset, env, [...root, pid, "reset"], map, issues);
    if (!p) continue;
    if (p.direction === "input") report(`"${pid}" is an input; a latch drives an output or a memory point`);
    else if (p.kind !== "bool") report(`"${pid}" is of type ${p.kind}; a latch drives a bool point`);
    else if (set && reset) out.push(Object.freeze({ id: pid, target: p.index, memory: p.direction === "memory", set, reset }));
  }
  return out;
}

/**
 * One driver per point: a point driven by a logic rule, a latch or a
 * sequence's actions must not be driven by another of these (two steps of
 * one sequence may act on the same output). Works on point ids as written.
 */
export function checkSingleDriver(
  logicTargets: Iterable<string>,
  sequences: SequencesConfig,
  latches: LatchesConfig,
  map: SourceMap,
  issues: Issues,
): void {
  const owner = new Map<string, string>();
  for (const t of logicTargets) owner.set(t, "a logic rule");
  for (const pid of Object.keys(latches)) {
    const o = owner.get(pid);
    if (o) issues.push(keyIssue(map, ["latches"], pid, `${pid} is also driven by ${o}`));
    else owner.set(pid, "a latch");
  }
  for (const [id, seq] of Object.entries(sequences)) {
    const mine = `sequence ${id}`;
    for (const [stepName, step] of Object.entries(seq.steps)) {
      for (const pid of Object.keys(step.actions)) {
        const o = owner.get(pid);
        if (o && o !== mine) issues.push(keyIssue(map, ["sequences", id, "steps", stepName, "actions"], pid, `${pid} is also driven by ${o}`));
        else owner.set(pid, mine);
      }
    }
  }
}
