// The client's address, as login abuse protection counts it.
//
// It is the peer of the connection, unless that peer is one of TESSERA_TRUSTED_PROXIES: then the
// proxy's forwarding header says who its client was. `X-Forwarded-For` is read when present (it
// is what nginx, Envoy, HAProxy and the cloud load balancers append to), else `Forwarded`
// (RFC 7239, its `for=` parameters). Both list hops left to right, each proxy appending the
// address it received the request from, so everything left of the last trusted proxy's entry
// was written by the client and proves nothing: the answer is the right-most hop that is not a
// trusted proxy. A hop that is no IP address (`unknown`, an obfuscated name, garbage, a
// `Forwarded` element without `for=`) stops the walk at the trusted proxy that reported it. A proxy that writes only `Forwarded` must drop an
// `X-Forwarded-For` sent by clients.
//
// The headers are read from the right, one hop at a time, as far as the walk goes and no further
// than maxHops: what a client wrote left of the proxies' hops (a 16 KiB header of entries, a
// quote it never closes) is not even parsed, and cannot change how the proxies' own hops read.
//
// IPv4 addresses are counted as they are; an IPv6 address as its /64 (one host usually holds a
// whole /64, so counting single IPv6 addresses would give it 2^64 tries), and login protection
// counts its /48 too (ipv6Prefix48, core/ip-prefix.ts). IPv4-mapped IPv6 addresses (::ffff:192.0.2.1, how a
// dual-stack socket reports IPv4 peers) are IPv4, and so are, once the proxies are judged (on the
// address as seen), those of the NAT64 well-known prefix (64:ff9b::192.0.2.1, RFC 6052) and of
// the prefixes of TESSERA_NAT64_PREFIXES (see counted). A local-use NAT64 prefix in
// 64:ff9b:1::/48 (RFC 8215) is only counted so when listed there: where its operator's prefix
// ends, and so where the IPv4 address lies, no address tells. A Teredo address (2001::/32, RFC
// 4380) is its client's IPv4 address too: its /64 is its Teredo server's, shared by every client
// of that server. A 6to4 address (2002::/16) is IPv6: its /48, 2002:<IPv4>::/48, is already one
// IPv4 address's.
import type { IncomingHttpHeaders } from "node:http";
import { BlockList, isIPv4, isIPv6 } from "node:net";
import { formatIPv6, ipv6Groups } from "../core/ip-prefix.js";
import { quoted } from "../core/text.js";

export type ClientAddressResolver = (peer: string | undefined, headers: IncomingHttpHeaders) => string;

/**
 * One entry of TESSERA_TRUSTED_PROXIES ("192.0.2.1", "10.0.0.0/8", "2001:db8::/64"; a bare address
 * is a /32 or /128) as the subnet it is checked against, or an Error naming what is wrong. An
 * IPv4-mapped IPv6 entry ("::ffff:10.0.0.0/104") is its IPv4 subnet, since mapped peers and hops
 * are counted as IPv4 (canonical); a mapped entry shorter than /96 would also cover addresses
 * that are not IPv4-mapped, and is refused. A /0 (every address) is refused too.
 */
export function proxySubnet(cidr: string): { address: string; prefix: number; family: "ipv4" | "ipv6" } {
  const [address, prefix, extra] = cidr.split("/") as [string, string | undefined, string | undefined];
  const ip = extra === undefined ? canonical(address) : undefined;
  if (ip === undefined) throw new Error(`${quoted(cidr)} is not an IP address or CIDR`);
  const mapped = isIPv4(ip) && !isIPv4(address.split("%", 1)[0]!);
  const max = isIPv4(ip) && !mapped ? 32 : 128;
  const bits = prefix === undefined ? max : /^\d{1,3}$/.test(prefix) ? Number(prefix) : NaN;
  if (!(bits >= 0 && bits <= max)) throw new Error(`${quoted(cidr)}: the prefix length must be 0 to ${max}`);
  if (mapped && bits < 96) throw new Error(`${quoted(cidr)}: the prefix length of an IPv4-mapped address must be 96 to 128`);
  const subnet = mapped ? { address: ip, prefix: bits - 96, family: "ipv4" as const } : { address: ip, prefix: bits, family: isIPv4(ip) ? ("ipv4" as const) : ("ipv6" as const) };
  // Every hop of every request would be a trusted proxy's: the left-most, which the client
  // writes itself, would be taken for the client. A mapped /96 is the IPv4 /0.
  if (subnet.prefix === 0) throw new Error(`${quoted(cidr)} trusts every address, so any client could name its own address; list the proxies' addresses or subnets`);
  return subnet;
}

/**
 * Whether an address (canonical: IPv4, or IPv6 that is not IPv4-mapped) is in one of the subnets
 * of TESSERA_TRUSTED_PROXIES (proxySubnet). An IPv4 address is checked against the IPv4 subnets
 * alone, an IPv6 one against the IPv6 subnets: node:net's BlockList also finds an IPv4 address in
 * an IPv6 subnet that holds its IPv4-mapped form, so `::1/64` or `::/80` (which hold all of
 * ::ffff:0:0/96) would trust every IPv4 client, each of which could then name its own address.
 */
export function trustedProxyList(cidrs: readonly string[]): (ip: string) => boolean {
  const lists = { ipv4: new BlockList(), ipv6: new BlockList() };
  for (const cidr of cidrs) {
    const { address, prefix, family } = proxySubnet(cidr);
    lists[family].addSubnet(address, prefix, family);
  }
  return (ip) => (isIPv4(ip) ? lists.ipv4.check(ip, "ipv4") : lists.ipv6.check(ip, "ipv6"));
}

/** The Teredo prefix, 2001::/32 (RFC 4380): 2001:0:<server IPv4>:<flags>:<port>:<client IPv4>, the last two with every bit inverted. */
const teredo: Nat64Prefix = { bytes: [0x20, 0x01, 0, 0], length: 32 };

/** Whether an address's 16 bytes lie in `prefix`. */
function within(bytes: readonly number[], prefix: Nat64Prefix): boolean {
  return prefix.bytes.slice(0, prefix.length / 8).every((b, i) => bytes[i] === b);
}

/**
 * One entry of TESSERA_NAT64_PREFIXES ("64:ff9b:1:ab::/64"): an IPv6 prefix of one of the lengths
 * RFC 6052 defines for IPv4-embedded addresses, as its 16 bytes and length; an Error naming what
 * is wrong.
 */
export function nat64Prefix(cidr: string): Nat64Prefix {
  const [address, prefix, extra] = cidr.split("/") as [string, string | undefined, string | undefined];
  if (extra !== undefined || prefix === undefined || address.includes("%") || !isIPv6(address) || isIPv4(canonical(address) ?? "")) {
    throw new Error(`${quoted(cidr)} is not an IPv6 prefix (address/length)`);
  }
  const length = /^\d{1,3}$/.test(prefix) ? Number(prefix) : NaN;
  if (!nat64Lengths.includes(length)) throw new Error(`${quoted(cidr)}: the prefix length must be 32, 40, 48, 56, 64 or 96 (RFC 6052)`);
  const bytes = ipv6Bytes(address);
  if (bytes.slice(length / 8).some((b) => b !== 0)) throw new Error(`${quoted(cidr)} has bits set beyond its /${length}`);
  if (within(bytes, teredo)) throw new Error(`${quoted(cidr)} lies in Teredo's 2001::/32 (RFC 4380), whose addresses are counted as their clients' IPv4 addresses`);
  return { bytes, length };
}

/** An IPv4-embedding IPv6 prefix: its address's 16 bytes and its length in bits. */
export interface Nat64Prefix {
  bytes: number[];
  length: number;
}

/** The prefix lengths of RFC 6052's IPv4-embedded IPv6 addresses. */
const nat64Lengths = [32, 40, 48, 56, 64, 96];

/**
 * The NAT64 well-known prefix, 64:ff9b::/96 (RFC 6052), written out: parsed at load, it cost the
 * start the first use of node:net's isIPv6 (V8 compiling its long pattern, about 10 ms), which
 * an IPv4 client's call never needs (test/server/client-address.test.ts checks it is the parse).
 */
export const nat64WellKnown: Nat64Prefix = { bytes: [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], length: 96 };

function ipv6Bytes(address: string): number[] {
  return ipv6Groups(address).flatMap((g) => [g >> 8, g & 0xff]);
}

export function createClientAddressResolver(trustedProxies: readonly string[], nat64Prefixes: readonly string[] = []): ClientAddressResolver {
  const isTrusted = trustedProxyList(trustedProxies);
  // The longest prefix holding an address says where its IPv4 address lies.
  const nat64 = [nat64WellKnown, ...nat64Prefixes.map(nat64Prefix)].sort((a, b) => b.length - a.length);
  const count = (ip: string) => counted(ip, nat64);
  const none = trustedProxies.length === 0;
  return (peer, headers) => {
    const direct = peer === undefined ? undefined : canonical(peer);
    if (direct === undefined) return "unknown";
    if (none || !isTrusted(direct)) return count(direct);
    let client = direct;
    let read = 0;
    for (const hop of hopsFromRight(headers)) {
      // Beyond maxHops, a hop is read as one that is no address: the walk stops where it is.
      if (hop === undefined || read++ === maxHops) break;
      client = hop;
      if (!isTrusted(hop)) break;
    }
    return count(client);
  };
}

/** The most hops the walk reads: no real chain of proxies is this long; what lies beyond is the client's writing. */
export const maxHops = 32;

/**
 * The hops a forwarding header lists, right to left, parsed as they are asked for; undefined for
 * one that is no IP address.
 */
export function* hopsFromRight(headers: IncomingHttpHeaders): Generator<string | undefined, void, undefined> {
  const xff = headerValues(headers["x-forwarded-for"]);
  if (xff.length > 0) {
    for (let v = xff.length - 1; v >= 0; v--) {
      for (const hop of splitFromRight(xff[v]!, ",", false)) yield hopAddress(hop.trim());
    }
    return;
  }
  const forwarded = headerValues(headers["forwarded"]);
  for (let v = forwarded.length - 1; v >= 0; v--) {
    for (const element of splitFromRight(forwarded[v]!, ",", true)) {
      const pair = [...splitFromRight(element, ";", true)].map((p) => p.trim()).find((p) => p.slice(0, 4).toLowerCase() === "for=");
      // An element without for= (a proxy that sends only proto= or host=) names no hop: the walk
      // stops there, as at one that is no address, rather than reading the element left of it,
      // which its client wrote.
      yield pair === undefined ? undefined : hopAddress(pair.slice(4).trim());
    }
  }
}

function headerValues(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/**
 * The parts of `s` between `sep`s, right to left; with `quotes`, a `sep` inside a quoted string
 * does not split. Read from the right, the proxies' own well-formed parts come first, so a quote
 * left open further left (by the client) cannot take them in.
 *
 * A quoted string's backslash begins a quoted-pair (RFC 9110 5.6.4): `\"` is a quote within it,
 * `\\` a backslash. Met from the right, a quote outside a string closes one, whatever stands
 * before it (`host="x\\"`, a Host that ends in a backslash, escaped: the backslash before the
 * quote is the pair's second); one inside opens it unless an odd run of backslashes stands
 * before it, the last of which escapes it. Taken for escaped, the closing quote of `"x\\"` left
 * the string open to the left, over the proxy's own comma, and a for= its client wrote was read.
 */
function* splitFromRight(s: string, sep: string, quotes: boolean): Generator<string, void, undefined> {
  let quoted = false;
  let end = s.length;
  for (let i = s.length - 1; i >= 0; i--) {
    const c = s[i];
    if (quotes && c === '"') {
      if (!quoted || backslashesBefore(s, i) % 2 === 0) quoted = !quoted;
    } else if (c === sep && !quoted) {
      yield s.slice(i + 1, end);
      end = i;
    }
  }
  yield s.slice(0, end);
}

/**
 * How many backslashes stand right before `s[i]`. Each run is counted once, for the quote it
 * ends at: the time is linear in `s`.
 */
function backslashesBefore(s: string, i: number): number {
  let n = 0;
  while (i - n - 1 >= 0 && s[i - n - 1] === "\\") n++;
  return n;
}

/** One hop as a header writes it: a bare or quoted address, IPv6 in brackets, maybe a port. */
function hopAddress(raw: string): string | undefined {
  let v = raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1) : raw;
  if (v.startsWith("[")) {
    const end = v.indexOf("]");
    if (end < 0) return undefined;
    v = v.slice(1, end);
  } else if (/^[\d.]+:\d+$/.test(v)) {
    v = v.slice(0, v.indexOf(":"));
  }
  return canonical(v);
}

/** An address in one spelling: IPv4-mapped IPv6 as IPv4, IPv6 lower-case and compressed. */
export function canonical(address: string): string | undefined {
  const a = address.split("%", 1)[0]!; // no zone id
  if (isIPv4(a)) return a;
  if (!isIPv6(a)) return undefined;
  const groups = ipv6Groups(a);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.${groups[7]! & 0xff}`;
  }
  return formatIPv6(groups);
}

/**
 * What the address is counted as: IPv4 itself, IPv6 its /64; but an address of a NAT64 prefix
 * (`nat64`: the well-known 64:ff9b::/96 of RFC 6052 and those the operator lists), how a
 * translator or proxy presents an IPv4 client to an IPv6 server, is the IPv4 address it embeds
 * where RFC 6052 puts it (after the prefix, skipping bits 64 to 71): as a /64 it would be one
 * client with every IPv4 client behind that translator, and one /48 with them too. So is a
 * Teredo address (2001::/32, RFC 4380; no NAT64 prefix may lie in it) the IPv4 address
 * of its client, its last 32 bits inverted, whatever that address is (private, loopback): its
 * /64 and /48 are its Teredo server's, one client with every other client of that server.
 */
export function counted(ip: string, nat64: readonly Nat64Prefix[]): string {
  if (isIPv4(ip)) return ip;
  const bytes = ipv6Bytes(ip);
  const prefix = nat64.find((p) => within(bytes, p));
  if (prefix !== undefined) {
    const suffix = prefix.length === 96 ? bytes.slice(12) : [...bytes.slice(0, 8), ...bytes.slice(9)].slice(prefix.length / 8, prefix.length / 8 + 4);
    return suffix.join(".");
  }
  if (within(bytes, teredo)) return bytes.slice(12).map((b) => b ^ 0xff).join(".");
  return `${formatIPv6(ipv6Groups(ip).slice(0, 4).concat(0, 0, 0, 0))}/64`;
}
