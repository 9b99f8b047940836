/**
 * A reader for the classic pcap file format (what `tcpdump -w` writes), as
 * far as the fleet bench needs it: IPv4 TCP and UDP packets on the loopback
 * interface, with the kernel's timestamp of each. Both timestamp precisions
 * (the µs magic and tcpdump's `--time-stamp-precision=nano` one) and both
 * byte orders; link types Ethernet (what Linux's `lo` gives), Linux cooked
 * v1 and v2 (`-i any`). Anything else is skipped, not guessed at.
 *
 * Times are milliseconds since the file's first packet: a float of the
 * seconds since 1970 in ms would keep only a quarter of a microsecond, and
 * the bench only ever needs differences.
 */

export interface WirePacket {
  /** Kernel timestamp, ms since the capture's first packet. */
  readonly t: number;
  readonly proto: "tcp" | "udp";
  readonly src: number;
  readonly dst: number;
  /** The captured part of the transport payload (the snap length may cut it). */
  readonly payload: Buffer;
  /** The payload's length on the wire. */
  readonly length: number;
}

const MAGIC_US = 0xa1b2c3d4;
const MAGIC_NS = 0xa1b23c4d;
const LINK_ETHERNET = 1;
const LINK_SLL = 113;
const LINK_SLL2 = 276;
const ETHERTYPE_IPV4 = 0x0800;

interface FileHeader {
  readonly u32: (o: number) => number;
  /** Units of a record's fraction field per millisecond. */
  readonly fracPerMs: number;
  readonly link: number;
}

function fileHeader(file: Buffer): FileHeader {
  if (file.length < 24) throw new Error(`pcap: ${file.length} bytes, shorter than the file header`);
  const magicLe = file.readUInt32LE(0);
  const magicBe = file.readUInt32BE(0);
  const le = magicLe === MAGIC_US || magicLe === MAGIC_NS;
  if (!le && magicBe !== MAGIC_US && magicBe !== MAGIC_NS) throw new Error(`pcap: unknown magic 0x${magicLe.toString(16)}`);
  const u32 = (o: number): number => (le ? file.readUInt32LE(o) : file.readUInt32BE(o));
  return { u32, fracPerMs: (le ? magicLe : magicBe) === MAGIC_NS ? 1e6 : 1e3, link: u32(20) };
}

/**
 * When the file's first packet was captured (ms since 1970; a float, so to a fraction of a µs),
 * the zero of every WirePacket's `t`; undefined for a file without packets. Throws on a file that is not pcap.
 */
export function pcapStartMs(file: Buffer): number | undefined {
  const { u32, fracPerMs } = fileHeader(file);
  return file.length >= 24 + 16 ? u32(24) * 1000 + u32(28) / fracPerMs : undefined;
}

/** Every IPv4 TCP/UDP packet of a pcap file, in file order. Throws on a file that is not pcap. */
export function* pcapPackets(file: Buffer): Generator<WirePacket> {
  const { u32, fracPerMs, link } = fileHeader(file);
  let first: { sec: number; frac: number } | undefined;
  let o = 24;
  while (o + 16 <= file.length) {
    const sec = u32(o);
    const frac = u32(o + 4);
    const captured = u32(o + 8);
    const start = o + 16;
    const end = start + captured;
    o = end;
    if (end > file.length) return; // the last record cut short (the capture was stopped mid-write)
    first ??= { sec, frac };
    const t = (sec - first.sec) * 1000 + (frac - first.frac) / fracPerMs;
    const ip = ipv4Start(file, start, end, link);
    if (ip === undefined) continue;
    const packet = transport(file, ip, end, t);
    if (packet) yield packet;
  }
}

/** Where the IPv4 header starts behind the link-layer header, or undefined (not IPv4, or a link type not read here). */
function ipv4Start(file: Buffer, start: number, end: number, link: number): number | undefined {
  let at: number;
  let ethertype: number;
  if (link === LINK_ETHERNET) {
    at = start + 14;
    ethertype = start + 14 <= end ? file.readUInt16BE(start + 12) : 0;
  } else if (link === LINK_SLL) {
    at = start + 16;
    ethertype = start + 16 <= end ? file.readUInt16BE(start + 14) : 0;
  } else if (link === LINK_SLL2) {
    at = start + 20;
    ethertype = start + 20 <= end ? file.readUInt16BE(start) : 0;
  } else {
    return undefined;
  }
  return ethertype === ETHERTYPE_IPV4 && at + 20 <= end && file[at]! >> 4 === 4 ? at : undefined;
}

function transport(file: Buffer, ip: number, end: number, t: number): WirePacket | undefined {
  const ihl = (file[ip]! & 0x0f) * 4;
  const total = file.readUInt16BE(ip + 2);
  const proto = file[ip + 9];
  const l4 = ip + ihl;
  if (proto === 6) {
    if (l4 + 20 > end) return undefined;
    const payloadAt = l4 + (file[l4 + 12]! >> 4) * 4;
    const length = ip + total - payloadAt;
    return { t, proto: "tcp", src: file.readUInt16BE(l4), dst: file.readUInt16BE(l4 + 2), payload: file.subarray(payloadAt, Math.min(end, payloadAt + length)), length };
  }
  if (proto === 17) {
    if (l4 + 8 > end) return undefined;
    const length = total - ihl - 8;
    return { t, proto: "udp", src: file.readUInt16BE(l4), dst: file.readUInt16BE(l4 + 2), payload: file.subarray(l4 + 8, Math.min(end, l4 + 8 + length)), length };
  }
  return undefined;
}
