/**
 * What one batch of recorded attempts does to each endpoint's failing
 * streak (src/webhooks/dispatcher.ts streaksOf): the same as recording them
 * one by one, in the order they were made.
 */
import t from 'tap';
import { streaksOf } from '../../src/webhooks/dispatcher.js';

const at = (s: number) => new Date(1_700_000_000_000 + s * 1000);
const ok = (endpointId: string, s: number) => ({ endpointId, at: at(s), ok: true, gone: false });
const fail = (endpointId: string, s: number, gone = false) => ({ endpointId, at: at(s), ok: false, gone });

t.test('a success ends the streak; failures before it in the batch count no more', async (t) => {
  t.same(streaksOf([fail('a', 1), fail('a', 2), ok('a', 3)]), { succeeded: ['a'], failed: [] });
});

t.test('failures after the last success are judged at the first and the last of them, in time order whatever the batch order', async (t) => {
  t.same(streaksOf([fail('a', 9), ok('a', 1), fail('a', 4), fail('a', 6)]), {
    succeeded: ['a'], failed: [{ endpointId: 'a', at: at(4), gone: false }, { endpointId: 'a', at: at(9), gone: false }],
  });
  t.same(streaksOf([fail('b', 2)]), { succeeded: [], failed: [{ endpointId: 'b', at: at(2), gone: false }] }, 'one failure: judged once');
});

t.test('a 410 anywhere disables, even with a success after it', async (t) => {
  t.same(streaksOf([fail('a', 1, true), ok('a', 2)]), { succeeded: ['a'], failed: [{ endpointId: 'a', at: at(1), gone: true }] });
});

t.test('endpoints apart, in id order (their rows are locked in that order)', async (t) => {
  t.same(streaksOf([ok('z', 1), fail('m', 1), ok('a', 2)]), { succeeded: ['a', 'z'], failed: [{ endpointId: 'm', at: at(1), gone: false }] });
});
