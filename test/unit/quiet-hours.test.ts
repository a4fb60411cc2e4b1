/** Quiet hours read in the buyer's time zone: inside or not, over midnight, on a day the zone changes its offset, in a zone 45 minutes off the hour. */
import t from 'tap';
import { quietUntil } from '../../src/notifications/quiet-hours.js';

const at = (iso: string) => Date.parse(iso);
const clock = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3));
const window = (timeZone: string, start: string, end: string) => ({ timeZone, start: clock(start), end: clock(end) });

t.test('a window over midnight', async (t) => {
  const night = window('Europe/Paris', '22:00', '07:00');
  t.equal(quietUntil(at('2026-01-15T23:30:00+01:00'), night)?.toISOString(), '2026-01-16T06:00:00.000Z', 'before midnight: the next morning');
  t.equal(quietUntil(at('2026-01-16T06:59:59.500+01:00'), night)?.toISOString(), '2026-01-16T06:00:00.000Z', 'half a second before its end');
  t.equal(quietUntil(at('2026-01-16T07:00:00+01:00'), night), undefined, 'its end is outside');
  t.equal(quietUntil(at('2026-01-15T12:00:00+01:00'), night), undefined, 'noon is outside');
  t.equal(quietUntil(at('2026-01-15T22:00:00+01:00'), night)?.toISOString(), '2026-01-16T06:00:00.000Z', 'its start is inside');
});

t.test('a day the zone changes its offset: the window ends at its local clock time', async (t) => {
  // Paris moves from +01:00 to +02:00 at 02:00 on 2026-03-29.
  t.equal(quietUntil(at('2026-03-29T01:30:00+01:00'), window('Europe/Paris', '01:00', '08:00'))?.toISOString(), '2026-03-29T06:00:00.000Z');
  // And back at 03:00 on 2026-10-25.
  t.equal(quietUntil(at('2026-10-25T01:30:00+02:00'), window('Europe/Paris', '01:00', '08:00'))?.toISOString(), '2026-10-25T07:00:00.000Z');
});

t.test('a zone 45 minutes off the hour, a window within a day', async (t) => {
  const evening = window('Asia/Kathmandu', '21:00', '21:30');
  t.equal(quietUntil(at('2026-06-01T21:10:00+05:45'), evening)?.toISOString(), '2026-06-01T15:45:00.000Z');
  t.equal(quietUntil(at('2026-06-01T20:59:00+05:45'), evening), undefined);
});
