/**
 * Which IP addresses a user-supplied URL may reach: public unicast only,
 * unless an operator allow-lists a host name, an address or a range.
 */

/** Four bytes of a strict dotted-decimal IPv4 address, or undefined. */
export function parseIPv4(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = parts.map((part) => (/^(0|[1-9]\d{0,2})$/.test(part) ? Number(part) : NaN));
  return bytes.every((byte) => byte >= 0 && byte <= 255) ? bytes : undefined;
}

/** Sixteen bytes of an IPv6 address (with `::` and an optional dotted-quad tail), or undefined. */
export function parseIPv6(text: string): number[] | undefined {
  let address = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  const zone = address.indexOf("%");
  if (zone >= 0) address = address.slice(0, zone);
  if (!/^[0-9a-fA-F:.]+$/.test(address) || !address.includes(":")) return undefined;
  let tail: number[] = [];
  const lastColon = address.lastIndexOf(":");
  if (address.slice(lastColon + 1).includes(".")) {
    const v4 = parseIPv4(address.slice(lastColon + 1));
    if (!v4) return undefined;
    tail = v4;
    address = `${address.slice(0, lastColon + 1)}0:0`;
  }
  const halves = address.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string) => (half === "" ? [] : half.split(":"));
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...rest];
  if (all.some((group) => !/^[0-9a-fA-F]{1,4}$/.test(group))) return undefined;
  const bytes = all.flatMap((group) => {
    const value = parseInt(group, 16);
    return [value >> 8, value & 0xff];
  });
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

function inRange(bytes: number[], prefix: number[], bits: number): boolean {
  for (let bit = 0; bit < bits; bit++) {
    const index = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if (((bytes[index] ?? 0) & mask) !== ((prefix[index] ?? 0) & mask)) return false;
  }
  return true;
}

const V4_BLOCKED: Array<[string, number, string]> = [
  ["169.254.169.254", 32, "a cloud metadata address"],
  ["0.0.0.0", 8, "an unspecified ('this network') address"],
  ["10.0.0.0", 8, "a private address"],
  ["100.64.0.0", 10, "a carrier-grade NAT (shared) address"],
  ["127.0.0.0", 8, "a loopback address"],
  ["169.254.0.0", 16, "a link-local address"],
  ["172.16.0.0", 12, "a private address"],
  ["192.0.0.0", 24, "an IETF protocol address"],
  ["192.0.2.0", 24, "a documentation address"],
  ["192.168.0.0", 16, "a private address"],
  ["198.18.0.0", 15, "a benchmarking address"],
  ["198.51.100.0", 24, "a documentation address"],
  ["203.0.113.0", 24, "a documentation address"],
  ["224.0.0.0", 4, "a multicast address"],
  ["240.0.0.0", 4, "a reserved address"],
];

const V6_BLOCKED: Array<[string, number, string]> = [
  ["fd00:ec2::254", 128, "a cloud metadata address"],
  ["::", 128, "an unspecified address"],
  ["::1", 128, "a loopback address"],
  ["::ffff:0:0", 96, "an IPv4-mapped IPv6 address"],
  ["::", 96, "an IPv4-compatible IPv6 address"],
  ["64:ff9b:1::", 48, "a local-use NAT64 address"],
  ["100::", 64, "a discard-only address"],
  ["2001::", 32, "a Teredo tunnel address"],
  ["2001:db8::", 32, "a documentation address"],
  ["fc00::", 7, "a unique-local address"],
  ["fe80::", 10, "a link-local address"],
  ["fec0::", 10, "a site-local address"],
  ["ff00::", 8, "a multicast address"],
];

/**
 * Why an address must not be fetched (e.g. "a loopback address"), or
 * undefined for a public address. Anything that is not an IP address is
 * refused too.
 */
export function blockedReason(address: string): string | undefined {
  const v4 = parseIPv4(address);
  if (v4) {
    for (const [prefix, bits, reason] of V4_BLOCKED) if (inRange(v4, parseIPv4(prefix)!, bits)) return reason;
    return undefined;
  }
  const v6 = parseIPv6(address);
  if (!v6) return "not an IP address";
  for (const [prefix, bits, reason] of V6_BLOCKED) if (inRange(v6, parseIPv6(prefix)!, bits)) return reason;
  // Addresses that embed an IPv4 address are judged by it.
  if (inRange(v6, parseIPv6("64:ff9b::")!, 96)) {
    const embedded = blockedReason(v6.slice(12).join("."));
    return embedded && `a NAT64 address of ${embedded}`;
  }
  if (inRange(v6, parseIPv6("2002::")!, 16)) {
    const embedded = blockedReason(v6.slice(2, 6).join("."));
    return embedded && `a 6to4 address of ${embedded}`;
  }
  return undefined;
}

/**
 * Whether an allow-list entry admits this host or address. Entries are host
 * names (exact, case-insensitive; `*.example.com` for subdomains), IP
 * addresses, or CIDR ranges (`10.1.0.0/16`, `fd00::/8`).
 */
export function isAllowListed(hostname: string, address: string, allowList: readonly string[]): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, "");
  for (const raw of allowList) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry.startsWith("*.")) {
      if (host.endsWith(entry.slice(1))) return true;
      continue;
    }
    const [base, bitsText] = entry.split("/");
    const entryV4 = parseIPv4(base!);
    const entryV6 = entryV4 ? undefined : parseIPv6(base!);
    if (!entryV4 && !entryV6) {
      if (host === entry) return true;
      continue;
    }
    const addressBytes = entryV4 ? parseIPv4(address) : parseIPv6(address);
    if (!addressBytes) continue;
    const bits = bitsText === undefined ? (entryV4 ? 32 : 128) : Number(bitsText);
    if (Number.isInteger(bits) && inRange(addressBytes, (entryV4 ?? entryV6)!, bits)) return true;
  }
  return false;
}
