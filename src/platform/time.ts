/**
 * True when an ISO 8601 date-time names a real instant: `new Date` would
 * quietly turn 2030-02-30 into March 2nd.
 */
export function isRealDateTime(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(s);
  if (!m || Number.isNaN(Date.parse(s))) return false;
  const [y, mo, d, h, mi, sec] = m.slice(1).map((x) => Number(x ?? 0)) as number[];
  const t = new Date(Date.UTC(y!, mo! - 1, d!, h!, mi!, sec!));
  return t.getUTCFullYear() === y && t.getUTCMonth() === mo! - 1 && t.getUTCDate() === d && t.getUTCHours() === h && t.getUTCMinutes() === mi && t.getUTCSeconds() === sec;
}
