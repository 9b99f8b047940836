/**
 * Node resolution at the start of every session (node-opcua; loaded only with
 * an OPC UA device): namespace URIs → indices, browse paths → NodeIds, then
 * one batched Read of DataType, ValueRank, UserAccessLevel and Value per
 * point to check that each node exists, is a scalar variable of a type that
 * fits the point, and is readable (inputs) or writable (outputs).
 */
import { AttributeIds, makeBrowsePath, NodeId, NodeIdType, VariantArrayType, type ClientSession, type DataValue } from "node-opcua";
import { builtinName, kindFits, writableAs } from "./codec.js";
import type { OpcuaAddress } from "./address.js";
import type { PlannedPoint } from "./plan.js";

export interface ResolvedNode {
  readonly nodeId: NodeId;
  /** Built-in type of the variable's value (codec.ts BUILTIN). */
  readonly builtin: number;
}

export type Resolution = { ok: true; nodes: ResolvedNode[] } | { ok: false; errors: string[] };

const ID_TYPE = { s: NodeIdType.STRING, i: NodeIdType.NUMERIC, g: NodeIdType.GUID, b: NodeIdType.BYTESTRING } as const;
const ACCESS_READ = 0x01;
const ACCESS_WRITE = 0x02;
/** ValueRank: -1 scalar, -2 any, -3 scalar or one dimension; 0 and above are arrays. */
const SCALAR_RANKS = new Set([-1, -2, -3]);

function makeNodeId(a: Extract<OpcuaAddress, { idType: unknown }>, ns: number): NodeId {
  const id = a.idType === "i" ? Number(a.id) : a.idType === "b" ? Buffer.from(a.id, "base64") : a.id;
  return new NodeId(ID_TYPE[a.idType], id, ns);
}

/** The built-in type of a variable: its DataType when that is a built-in one, else the type its current value has. */
function builtinOf(dataType: DataValue, value: DataValue): number | undefined {
  const dt: unknown = dataType.value.value;
  if (dt instanceof NodeId && dt.namespace === 0 && typeof dt.value === "number" && dt.value >= 1 && dt.value <= 25) return dt.value;
  const t = value.value.dataType as number;
  return value.statusCode.isGood() && t !== 0 ? t : undefined;
}

export async function resolveNodes(session: ClientSession, points: readonly PlannedPoint[]): Promise<Resolution> {
  const errors: string[] = [];
  const ids: (NodeId | undefined)[] = new Array<NodeId | undefined>(points.length).fill(undefined);

  const needsNamespaces = points.some((p) => p.address.kind === "node-uri");
  const namespaces = needsNamespaces ? await session.readNamespaceArray() : [];
  const browse: number[] = [];
  points.forEach((p, i) => {
    const a = p.address;
    if (a.kind === "node") ids[i] = makeNodeId(a, a.ns);
    else if (a.kind === "node-uri") {
      const ns = namespaces.indexOf(a.uri);
      if (ns < 0) errors.push(`${p.id}: the server has no namespace ${a.uri} (address ${a.text})`);
      else ids[i] = makeNodeId(a, ns);
    } else browse.push(i);
  });
  if (browse.length > 0) {
    const results = await session.translateBrowsePath(browse.map((i) => makeBrowsePath("i=85", (points[i]!.address as { path: string }).path)));
    browse.forEach((pi, k) => {
      const r = results[k];
      const target = r?.targets?.[0]?.targetId;
      if (!r || !r.statusCode.isGood() || !target) {
        errors.push(`${points[pi]!.id}: browse path ${points[pi]!.address.text} not found from Objects (${r?.statusCode.name ?? "no result"})`);
      } else ids[pi] = NodeId.resolveNodeId(target.toString());
    });
  }

  const present = points.flatMap((_, i) => (ids[i] ? [i] : []));
  const attrs = [AttributeIds.DataType, AttributeIds.ValueRank, AttributeIds.UserAccessLevel, AttributeIds.Value];
  const dvs = present.length === 0 ? [] : await session.read(present.flatMap((i) => attrs.map((attributeId) => ({ nodeId: ids[i]!, attributeId }))));
  const nodes: ResolvedNode[] = [];
  present.forEach((pi, k) => {
    const p = points[pi]!;
    const [dataType, rank, access, value] = dvs.slice(k * 4, k * 4 + 4) as [DataValue, DataValue, DataValue, DataValue];
    const where = `${p.id}: node ${p.address.text}`;
    if (!dataType.statusCode.isGood()) {
      errors.push(
        dataType.statusCode.name === "BadNodeIdUnknown" ? `${where} does not exist on the server (BadNodeIdUnknown)` : `${where} is not a variable (${dataType.statusCode.name})`,
      );
      return;
    }
    const vr = rank.statusCode.isGood() ? Number(rank.value.value) : -1;
    if (!SCALAR_RANKS.has(vr) || value.value.arrayType !== VariantArrayType.Scalar) {
      errors.push(`${where} is an array; cellio points are scalars`);
      return;
    }
    const builtin = builtinOf(dataType, value);
    if (builtin === undefined) {
      errors.push(`${where}: cannot tell its built-in type (DataType ${String(dataType.value.value)}, value ${value.statusCode.name})`);
      return;
    }
    if (!kindFits(p.kind, builtin) || (p.direction === "output" && !writableAs(p.kind, builtin))) {
      errors.push(`${where} is ${builtinName(builtin)}, which does not fit the point's type ${p.kind}`);
      return;
    }
    const level = access.statusCode.isGood() ? Number(access.value.value) : ACCESS_READ | ACCESS_WRITE;
    if (p.direction === "input" && (level & ACCESS_READ) === 0) errors.push(`${where} is not readable by this user`);
    else if (p.direction === "output" && (level & ACCESS_WRITE) === 0) errors.push(`${where} is not writable by this user`);
    else nodes[pi] = { nodeId: ids[pi]!, builtin };
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, nodes };
}

