/**
 * Commands over OPC UA: writes of output variables and the methods on Cell
 * (ResetInterlock(Id), ResetSequence(Id), Acknowledge(Id), ResetFault(),
 * SetMode(Mode: "auto" | "manual")).
 * Every one goes through the CommandPort with the session's role; nothing
 * here changes a value itself. An accepted write is applied at the start of
 * the next cycle, and the variable shows it once the device has taken it
 * (values.ts publishes the process image, never the request).
 *
 * Refusals: the role → BadUserAccessDenied; an input → BadNotWritable; a
 * tripped interlock or a state that does not allow it → BadInvalidState;
 * a value of another data type than the variable's → BadTypeMismatch; beyond
 * what the point's register can hold → BadOutOfRange. The reason (naming the
 * interlock) is logged and shown in Cell/Diagnostics/LastCommand.
 */
import {
  DataType,
  NumericRange,
  StatusCodes,
  Variant,
  type CallMethodResultOptions,
  type DataValue,
  type ISessionContext,
  type Namespace,
  type StatusCode,
  type UAObject,
  type UAVariable,
} from "node-opcua";
import type { Logger } from "../../infra/logger.js";
import type { Clock } from "../../infra/clock.js";
import type { OpcuaConfig, OpcuaRole } from "./config.js";
import { roleOfToken, type UserDirectory } from "./security.js";
import type { CellNodes } from "./nodes.js";
import type { WriteAccess } from "./point-nodes.js";
import { fromVariant, pointType } from "./data-types.js";
import type { Command, CommandPort, CommandResult, PointView } from "./ports.js";

export interface CommandDeps {
  readonly config: OpcuaConfig;
  readonly users: UserDirectory;
  readonly port: CommandPort | undefined;
  readonly clock: Clock;
  readonly log: Logger;
  readonly nodes: CellNodes;
  /** The OPC UA conditions (alarms.ts), acknowledged when an acknowledge command is accepted. */
  alarms?: { has(id: string): boolean; acknowledge(id: string, user: string): boolean };
}

/** The cellio role of the session behind `context`, if it has one. */
export function roleOfContext(context: ISessionContext | null | undefined, deps: Pick<CommandDeps, "users" | "config">): OpcuaRole | undefined {
  const session = context?.session;
  if (session === undefined) return undefined;
  return roleOfToken(session.userIdentityToken, deps.users, deps.config);
}

/** Who sent it: the user and the session, the rate-limit key of the command router. */
export function callerOf(context: ISessionContext): string {
  const session = context.session;
  return `opcua:${context.getUserName()}@${session ? session.getSessionId().toString() : "?"}`;
}

/** StatusCode for a command result. */
export function statusOf(r: CommandResult): StatusCode {
  if (r.accepted) return StatusCodes.Good;
  switch (r.code) {
    case "forbidden":
      return StatusCodes.BadUserAccessDenied;
    case "read_only":
      return StatusCodes.BadNotWritable;
    case "interlocked":
    case "not_ready":
      return StatusCodes.BadInvalidState;
    case "bad_value":
      return StatusCodes.BadTypeMismatch;
    case "unknown_target":
      return StatusCodes.BadNotFound;
    case "bad_command":
      return StatusCodes.BadInvalidArgument;
    case "rate_limited":
      return StatusCodes.BadTooManyOperations;
    case "busy":
      return StatusCodes.BadResourceUnavailable;
  }
}

function describe(c: Command): string {
  switch (c.kind) {
    case "set_point":
      return `set ${c.point} = ${JSON.stringify(c.value)}`;
    case "reset_interlock":
    case "reset_sequence":
    case "acknowledge":
      return `${c.kind} ${c.id}`;
    case "reset_fault":
      return "reset_fault";
    case "set_mode":
      return `set_mode ${c.mode}`;
  }
}

/** The set_mode command for a SetMode method argument; undefined for anything but "auto" or "manual". */
export function setModeCommand(arg: unknown): Command | undefined {
  return arg === "auto" || arg === "manual" ? { kind: "set_mode", mode: arg } : undefined;
}

/**
 * Submit with the session's role; log and record the outcome. `orElse` may
 * turn a refusal into an acceptance (an alarm the core does not track).
 */
export function submit(deps: CommandDeps, context: ISessionContext, command: Command, orElse?: (r: CommandResult) => boolean): CommandResult {
  const role = roleOfContext(context, deps);
  const who = context.getUserName();
  let result: CommandResult;
  if (role === undefined) result = { accepted: false, code: "forbidden", reason: `session of ${who} has no role` };
  else if (role === "viewer") result = { accepted: false, code: "forbidden", reason: "role viewer may not send commands" };
  else if (deps.port === undefined) result = { accepted: false, code: "not_ready", reason: "commands are not connected in this cellio" };
  else result = deps.port.submit(command, { role, caller: callerOf(context), nowMs: deps.clock.now() });
  if (!result.accepted && role !== undefined && role !== "viewer" && orElse?.(result) === true) result = { accepted: true };
  const text = `${describe(command)} by ${who} (${role ?? "no role"}): ${result.accepted ? "accepted" : `refused, ${result.code}: ${result.reason}`}`;
  deps.nodes.diagnostics.lastCommand.set(text, Date.now());
  if (result.accepted) deps.log.info({ command, user: who, role }, `OPC UA command ${describe(command)} accepted`);
  else deps.log.warn({ command, user: who, role, code: result.code, reason: result.reason }, `OPC UA command refused: ${text}`);
  return result;
}

type StatusCallback = (err: Error | null, statusCode?: StatusCode) => void;
type WriteValueFn = (context: ISessionContext, dataValue: DataValue, ...args: unknown[]) => Promise<StatusCode> | void;

/**
 * Route writes of a point variable to the command path. node-opcua's bound
 * setters do not see the session, and the command needs its role, so the
 * variable's writeValue is replaced (node-opcua calls it from the Write
 * service after its own role-permission check).
 */
export function installPointWrite(node: UAVariable, p: PointView, access: WriteAccess, deps: CommandDeps): void {
  const type = deps.nodes.pointTypes[p.index] ?? pointType(p);
  const write = (context: ISessionContext, dataValue: DataValue, indexRange: NumericRange | string | null): StatusCode => {
    const role = roleOfContext(context, deps);
    if (role === undefined || role === "viewer" || (role === "operator" && !access.operator)) {
      deps.log.warn({ point: p.id, user: context.getUserName(), role }, `OPC UA write of ${p.id} refused: role ${role ?? "none"} may not write it`);
      return StatusCodes.BadUserAccessDenied;
    }
    if (indexRange !== null && !NumericRange.coerce(indexRange).isEmpty()) return StatusCodes.BadIndexRangeNoData;
    const v = fromVariant(type, dataValue.value);
    if (!v.ok) {
      deps.log.warn({ point: p.id, user: context.getUserName(), why: v.why }, `OPC UA write of ${p.id} refused: ${v.why === "type" ? "not a" : "out of the range of its"} ${DataType[type.dataType]}`);
      return v.why === "type" ? StatusCodes.BadTypeMismatch : StatusCodes.BadOutOfRange;
    }
    return statusOf(submit(deps, context, { kind: "set_point", point: p.id, value: v.value }));
  };
  const replacement: WriteValueFn = (context, dataValue, ...args) => {
    const last = args[args.length - 1];
    const indexRange = (args.length === 2 ? args[0] : null) as NumericRange | string | null;
    if (typeof last === "function") {
      (last as StatusCallback)(null, write(context, dataValue, indexRange));
      return;
    }
    return Promise.resolve(write(context, dataValue, (args[0] ?? null) as NumericRange | string | null));
  };
  // node-opcua typings: writeValue is an overloaded method; the replacement implements every overload.
  (node as unknown as { writeValue: WriteValueFn }).writeValue = replacement;
}

const ID_ARG = [{ name: "Id", description: { text: "interlock, sequence or alarm id" }, dataType: DataType.String }];
const RESULT_ARG = [{ name: "Result", description: { text: '"accepted", or why it was refused' }, dataType: DataType.String }];

function methodResult(r: CommandResult): CallMethodResultOptions {
  return {
    statusCode: statusOf(r),
    outputArguments: [new Variant({ dataType: DataType.String, value: r.accepted ? "accepted" : `${r.code}: ${r.reason}` })],
  };
}

/** The command methods on Cell. */
export function addCommandMethods(ns: Namespace, cell: UAObject, deps: CommandDeps): void {
  const withId = (name: string, description: string, make: (id: string) => Command): void => {
    const m = ns.addMethod(cell, { browseName: name, nodeId: `s=Cell.${name}`, description, inputArguments: ID_ARG, outputArguments: RESULT_ARG });
    m.bindMethod(async (args: Variant[], context: ISessionContext): Promise<CallMethodResultOptions> => {
      const id: unknown = args[0]?.value;
      if (typeof id !== "string" || id === "") return { statusCode: StatusCodes.BadInvalidArgument };
      const command = make(id);
      if (command.kind !== "acknowledge") return Promise.resolve(methodResult(submit(deps, context, command)));
      // An alarm only the OPC UA server keeps (the core answers unknown_target) is still acknowledged here.
      const local = deps.alarms?.has(id) === true;
      const r = submit(deps, context, command, (x) => !x.accepted && x.code === "unknown_target" && local);
      if (r.accepted && local) deps.alarms?.acknowledge(id, context.getUserName());
      return Promise.resolve(methodResult(r));
    });
  };
  withId("ResetInterlock", "Reset a latched interlock (accepted only while its permit is true)", (id) => ({ kind: "reset_interlock", id }));
  withId("ResetSequence", "Reset a sequence to its initial step", (id) => ({ kind: "reset_sequence", id }));
  withId("Acknowledge", "Acknowledge an alarm (interlock.<id>, device.<name>, overrun)", (id) => ({ kind: "acknowledge", id }));
  const rf = ns.addMethod(cell, { browseName: "ResetFault", nodeId: "s=Cell.ResetFault", description: "Clear the overrun fault (refused while cycles still overrun)", outputArguments: RESULT_ARG });
  rf.bindMethod(async (_args: Variant[], context: ISessionContext): Promise<CallMethodResultOptions> =>
    Promise.resolve(methodResult(submit(deps, context, { kind: "reset_fault" }))),
  );
  const sm = ns.addMethod(cell, {
    browseName: "SetMode",
    nodeId: "s=Cell.SetMode",
    description: 'Switch the control mode: "manual" (outputs set by writes, still under the interlocks) or "auto"; refused where the config does not allow manual mode',
    inputArguments: [{ name: "Mode", description: { text: '"auto" or "manual"' }, dataType: DataType.String }],
    outputArguments: RESULT_ARG,
  });
  sm.bindMethod(async (args: Variant[], context: ISessionContext): Promise<CallMethodResultOptions> => {
    const command = setModeCommand(args[0]?.value);
    if (command === undefined) return { statusCode: StatusCodes.BadInvalidArgument };
    return Promise.resolve(methodResult(submit(deps, context, command)));
  });
}
