/**
 * Server-side request forgery: a webhook URL must not reach into the
 * network Stampede runs in. Its host is resolved and every address it
 * resolves to is checked against the loopback, private, shared, link-local
 * (cloud metadata: 169.254.169.254, fd00:ec2::254), multicast and reserved
 * ranges, at registration and again before every delivery (DNS may answer
 * otherwise later: rebinding); the delivery then connects to the address
 * that was checked, never to a second lookup's. Nothing is sent to a
 * refused address: the check runs before any connection is opened.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

const refused = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.0.0.0', 24],
  ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) refused.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128], ['::1', 128], ['64:ff9b::', 96], ['100::', 64], ['2001::', 23], ['2001:db8::', 32], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
] as const) refused.addSubnet(net, prefix, 'ipv6');

/** Why an address may not be sent to, or undefined when it may. */
export function refusalOf(address: string): string | undefined {
  const family = isIP(address);
  if (family === 0) return 'is not an IP address';
  // An IPv4 address mapped into IPv6 (::ffff:a.b.c.d) is that IPv4 address.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return refusalOf(mapped[1]!);
  if (family === 6 && /^::ffff:/i.test(address)) return 'is an IPv4-mapped address';
  return refused.check(address, family === 4 ? 'ipv4' : 'ipv6') ? `${address} is a loopback, private, link-local or reserved address` : undefined;
}

export interface ResolvedTarget {
  address: string;
  family: 4 | 6;
}

export class RefusedTargetError extends Error {}

/**
 * The address to connect to for `hostname` (an IP literal, or a name
 * resolved now): the first it resolves to, when every one may be sent to
 * (or `allowPrivate`). Throws RefusedTargetError otherwise.
 */
export async function resolveTarget(hostname: string, allowPrivate: boolean): Promise<ResolvedTarget> {
  const host = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  let addresses: { address: string; family: number }[];
  if (isIP(host) !== 0) addresses = [{ address: host, family: isIP(host) }];
  else {
    try {
      addresses = await lookup(host, { all: true, verbatim: true });
    } catch {
      throw new RefusedTargetError(`${host} does not resolve`);
    }
    if (addresses.length === 0) throw new RefusedTargetError(`${host} does not resolve`);
  }
  if (!allowPrivate) {
    for (const a of addresses) {
      const why = refusalOf(a.address);
      if (why) throw new RefusedTargetError(host === a.address ? why : `${host} resolves to ${why}`);
    }
  }
  const first = addresses[0]!;
  return { address: first.address, family: first.family === 6 ? 6 : 4 };
}
