/** The throttle's arithmetic on a clock of its own: the limit, the window, and the bound on addresses it remembers. */
import t from 'tap';
import { AuthThrottle } from '../../src/platform/http/auth-throttle.js';

t.test('throttled past the limit, for the rest of the window', async (t) => {
  let now = 1_000_000;
  const th = new AuthThrottle({ limit: 2, windowMs: 10_000, now: () => now });
  t.notOk(th.watching, 'nothing watched before a failure');
  th.failed('a');
  th.failed('a');
  t.equal(th.retryAfter('a'), 0, 'at the limit: not throttled');
  th.failed('a');
  t.equal(th.retryAfter('a'), 10, 'past it: the window\'s 10 s');
  now += 7_500;
  t.equal(th.retryAfter('a'), 3, 'seconds left, rounded up');
  t.equal(th.retryAfter('b'), 0, 'another address is not throttled');
  now += 2_500;
  t.equal(th.retryAfter('a'), 0, 'the window ended');
  t.notOk(th.watching, 'and is forgotten');
});

t.test('a limit of 0 never throttles or remembers', async (t) => {
  const th = new AuthThrottle({ limit: 0, windowMs: 10_000 });
  for (let i = 0; i < 100; i++) th.failed('a');
  t.equal(th.retryAfter('a'), 0);
  t.notOk(th.watching);
});

t.test('at most maxAddresses are remembered: ended windows first, then the oldest', async (t) => {
  let now = 0;
  const th = new AuthThrottle({ limit: 1, windowMs: 1_000, maxAddresses: 3, now: () => now });
  for (const a of ['a', 'b', 'c']) { th.failed(a); th.failed(a); }
  t.equal(th.retryAfter('a'), 1, 'a is throttled');
  th.failed('d');
  th.failed('d');
  t.equal(th.retryAfter('a'), 0, 'a, the oldest, was forgotten for d');
  t.equal(th.retryAfter('b'), 1, 'b is still throttled');
  t.equal(th.retryAfter('d'), 1, 'd is throttled');
  now = 2_000;
  th.failed('e');
  t.equal(th.retryAfter('b'), 0, 'ended windows go');
});
