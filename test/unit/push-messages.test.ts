/** The live push's messages: one per group of rows telling the same thing at the same time, each recipient with their own id. */
import t from 'tap';
import { deliveriesOf, pushMessagesOf, RECIPIENTS_PER_MESSAGE } from '../../src/notifications/push.js';
import { viewOf } from '../../src/notifications/inbox.js';
import type { NotificationRecord } from '../../src/notifications/repository.js';

const at = new Date('2026-01-02T03:04:05.000Z');
const rowOf = (seq: number, recipientId: string, title = 'Lot 7 opens'): NotificationRecord => ({
  seq, eventId: 'ev', recipientId, type: 'auction.created', title, body: 'Soon.', data: { auctionId: 'auc_000000000007' }, createdAt: at, readAt: null,
});

t.test('rows of one chunk travel as one message; each recipient gets exactly the item the inbox shows them', async (t) => {
  const rows = [rowOf(11, 'usr_aaaaaaaaaaaa'), rowOf(12, 'usr_bbbbbbbbbbbb'), rowOf(13, 'usr_cccccccccccc', 'Another title')];
  const messages = pushMessagesOf(rows);
  t.equal(messages.length, 2, 'one message per distinct item');
  const delivered = messages.flatMap((m) => deliveriesOf(m)!);
  t.same(delivered, rows.map((r) => ({ buyerId: r.recipientId, id: viewOf(r).id, itemJson: JSON.stringify(viewOf(r)) })), 'each their own id, nobody else');
  const many = Array.from({ length: RECIPIENTS_PER_MESSAGE + 1 }, (_, i) => rowOf(i + 1, `usr_${String(i).padStart(12, '0')}`));
  t.equal(pushMessagesOf(many).length, 2, 'a large group is split');
});

t.test('a malformed message delivers nothing', async (t) => {
  const good = JSON.parse(pushMessagesOf([rowOf(1, 'usr_aaaaaaaaaaaa')])[0]!);
  for (const [what, message] of [
    ['not JSON', 'usr_aaaaaaaaaaaa {"id":"ntf_1"}'],
    ['no recipients list', JSON.stringify({ item: good.item })],
    ['no item', JSON.stringify({ to: good.to })],
    ['a bad buyer id', JSON.stringify({ ...good, to: [...good.to, ['usr_x', 2]] })],
    ['a bad seq', JSON.stringify({ ...good, to: [...good.to, ['usr_bbbbbbbbbbbb', '2']] })],
    ['a zero seq', JSON.stringify({ ...good, to: [['usr_bbbbbbbbbbbb', 0]] })],
  ] as const) t.equal(deliveriesOf(message), undefined, what);
});
