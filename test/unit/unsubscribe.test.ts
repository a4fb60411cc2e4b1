/** One-click unsubscribe tokens: only the exact token this key signed verifies. */
import t from 'tap';
import { UnsubscribeLinks } from '../../src/notifications/unsubscribe.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const links = new UnsubscribeLinks('unsubscribe-test-secret-0123456789-abcdef', 'https://stampede.example');
const BUYER = 'usr_0123456789ab';

t.test('a token verifies; another spelling of the same signature bytes does not', async (t) => {
  const token = new URL(links.url(BUYER, 'auction.won')).searchParams.get('token')!;
  t.same(links.verify(token), { buyerId: BUYER, type: 'auction.won' });
  // 43 characters carry 258 bits for 256: the last one's two low bits are unused, so these spell the same bytes.
  const last = ALPHABET.indexOf(token.at(-1)!);
  const twins = [1, 2, 3].map((bits) => token.slice(0, -1) + ALPHABET[last ^ bits]);
  for (const twin of twins) {
    t.same(Buffer.from(twin.split('.')[1]!, 'base64url'), Buffer.from(token.split('.')[1]!, 'base64url'), 'the same bytes');
    t.equal(links.verify(twin), undefined, 'refused all the same');
  }
  t.equal(links.verify(token.slice(0, 10) + (token[10] === 'A' ? 'B' : 'A') + token.slice(11)), undefined, 'a changed payload');
  t.equal(links.verify(`${token}x`), undefined);
  t.equal(links.verify(''), undefined);
});
