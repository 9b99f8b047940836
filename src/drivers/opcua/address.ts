/**
 * OPC UA point addresses, parsed at load (pure, no node-opcua):
 *   ns=2;s=Robot.ServoOn    NodeId by namespace index (s=string, i=numeric, g=GUID, b=opaque base64)
 *   nsu=urn:x;s=ServoOn     NodeId by namespace URI (looked up in the server's NamespaceArray per session)
 *   i=2258                  namespace 0
 *   /2:Robot/2:ServoOn      browse path from Objects (OPC UA relative path text, hierarchical references)
 */

export type IdType = "s" | "i" | "g" | "b";

export type OpcuaAddress =
  | { readonly kind: "node"; readonly ns: number; readonly idType: IdType; readonly id: string; readonly text: string }
  | { readonly kind: "node-uri"; readonly uri: string; readonly idType: IdType; readonly id: string; readonly text: string }
  | { readonly kind: "browse"; readonly path: string; readonly text: string };

export type ParseResult = { ok: true; address: OpcuaAddress } | { ok: false; error: string };

const GUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const BROWSE_SEGMENT_RE = /^(\d+:)?[^/]+$/;

function parseIdentifier(idPart: string, text: string): { idType: IdType; id: string } | string {
  const m = /^([sigb])=(.*)$/s.exec(idPart);
  if (!m) return `"${text}": the identifier must be s=<string>, i=<number>, g=<guid> or b=<base64>`;
  const idType = m[1] as IdType;
  const id = m[2]!;
  if (id === "") return `"${text}": empty identifier`;
  if (idType === "i" && (!/^\d+$/.test(id) || Number(id) > 0xffffffff)) return `"${text}": i= needs an integer 0..4294967295`;
  if (idType === "g" && !GUID_RE.test(id)) return `"${text}": g= needs a GUID like 72962b91-fa75-4ae6-8d28-b404dc7daf63`;
  if (idType === "b" && !/^[A-Za-z0-9+/]+={0,2}$/.test(id)) return `"${text}": b= needs base64`;
  return { idType, id };
}

export function parseAddress(raw: string): ParseResult {
  const text = raw.trim();
  if (text.startsWith("/")) {
    const segments = text.slice(1).split("/");
    if (segments.some((s) => !BROWSE_SEGMENT_RE.test(s))) {
      return { ok: false, error: `browse path "${text}": each step is /<namespace index>:<BrowseName>, e.g. /2:Robot/2:ServoOn` };
    }
    return { ok: true, address: { kind: "browse", path: text, text } };
  }
  const nsu = /^nsu=([^;]+);(.*)$/s.exec(text);
  if (nsu) {
    const id = parseIdentifier(nsu[2]!, text);
    if (typeof id === "string") return { ok: false, error: id };
    return { ok: true, address: { kind: "node-uri", uri: nsu[1]!, ...id, text } };
  }
  const ns = /^ns=(\d+);(.*)$/s.exec(text);
  const nsIndex = ns ? Number(ns[1]) : 0;
  if (nsIndex > 0xffff) return { ok: false, error: `"${text}": namespace index above 65535` };
  const id = parseIdentifier(ns ? ns[2]! : text, text);
  if (typeof id === "string") {
    return {
      ok: false,
      error: /^[sigb]=/.test(text) || ns ? id : `"${text}" is neither a NodeId (ns=2;s=Name, nsu=<uri>;s=Name) nor a browse path (/2:Folder/2:Name)`,
    };
  }
  return { ok: true, address: { kind: "node", ns: nsIndex, ...id, text } };
}
