/**
 * Quiet hours: a daily window of local time in the buyer's time zone
 * (minutes after local midnight; a window whose end is before its start
 * runs over midnight) during which their e-mail and SMS wait. `quietUntil`
 * says when the window holding an instant ends, read in that zone, so a
 * window ends at its local clock time on days the zone changes its offset
 * too.
 */
const MINUTE_MS = 60_000;
const DAY_MINUTES = 1_440;

const clocks = new Map<string, Intl.DateTimeFormat>();

/** Minutes (with their fraction) after local midnight in `timeZone` at `instant`. */
export function localMinutesOf(instant: number, timeZone: string): number {
  let clock = clocks.get(timeZone);
  if (!clock) {
    clock = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    clocks.set(timeZone, clock);
  }
  const part = (type: string) => Number(clock.formatToParts(instant).find((p) => p.type === type)!.value);
  return part('hour') * 60 + part('minute') + (part('second') * 1000 + (((instant % 1000) + 1000) % 1000)) / MINUTE_MS;
}

export interface QuietWindow {
  timeZone: string;
  /** Minutes after local midnight. */
  start: number;
  end: number;
}

/** When the quiet window holding `instant` ends; undefined when `instant` is outside it. */
export function quietUntil(instant: number, w: QuietWindow): Date | undefined {
  const local = localMinutesOf(instant, w.timeZone);
  const inside = w.start < w.end ? local >= w.start && local < w.end : local >= w.start || local < w.end;
  if (!inside) return undefined;
  const until = instant + ((w.end - local + DAY_MINUTES) % DAY_MINUTES) * MINUTE_MS;
  // The offset changed on the way (DST): move by the local minutes the clock is off `end` then.
  const drift = ((localMinutesOf(until, w.timeZone) - w.end + DAY_MINUTES * 1.5) % DAY_MINUTES) - DAY_MINUTES / 2;
  return new Date(Math.round(until - drift * MINUTE_MS));
}
