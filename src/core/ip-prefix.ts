// IPv6 address arithmetic shared by the server (what a client address is counted as:
// server/client-address.ts) and the login throttle (the /48 an address lies in).
import { isIPv6 } from "node:net";

/**
 * The IPv6 /48 that an address `counted` gives (an IPv6 /64, or an IPv6 address) lies in, as
 * "2001:db8:1::/48"; undefined for IPv4 and anything else. A site is usually given a /48, so one
 * holder can take a fresh /64 of it for every request. IPv4 addresses are never grouped: carrier-
 * grade NAT puts many unrelated users behind one /24.
 */
export function ipv6Prefix48(address: string): string | undefined {
  const ip = address.endsWith("/64") ? address.slice(0, -3) : address;
  if (!isIPv6(ip)) return undefined;
  const groups = ipv6Groups(ip);
  return `${formatIPv6([...groups.slice(0, 3), 0, 0, 0, 0, 0])}/48`;
}

/** The eight 16-bit groups of a valid IPv6 address (a dotted IPv4 tail is two groups). */
export function ipv6Groups(a: string): number[] {
  let text = a;
  const lastColon = text.lastIndexOf(":");
  const tail = text.slice(lastColon + 1);
  if (tail.includes(".")) {
    const q = tail.split(".").map(Number) as [number, number, number, number];
    text = `${text.slice(0, lastColon + 1)}${((q[0] << 8) | q[1]).toString(16)}:${((q[2] << 8) | q[3]).toString(16)}`;
  }
  const parse = (s: string) => (s === "" ? [] : s.split(":").map((g) => parseInt(g, 16)));
  const gap = text.indexOf("::");
  if (gap < 0) return parse(text);
  const left = parse(text.slice(0, gap));
  const right = parse(text.slice(gap + 2));
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/** RFC 5952: lower-case, no leading zeros, the longest run of two or more zero groups as "::". */
export function formatIPv6(groups: number[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}
