/**
 * Duplicate member names: found wherever they are (nested, spelled with
 * escapes), never where there are none; and on texts fast-check generates,
 * found exactly when the tree the text was written from has one.
 */
import t from 'tap';
import fc from 'fast-check';
import { duplicateKey } from '../../src/platform/http/json.js';

t.test('names given twice in one object are found', async (t) => {
  t.equal(duplicateKey('{"quantity":1,"quantity":100}'), 'quantity');
  t.equal(duplicateKey('{"z":0,"a":{"b":1,"c":[1,{"x":1,"x":2}]}}'), 'x', 'nested in an array in an object');
  t.equal(duplicateKey('{"quantity":1,"quanti\\u0074y":2}'), 'quantity', 'spelled with an escape');
  t.equal(duplicateKey('{"a\\"b":1,"a\\"b":2}'), 'a"b', 'a name holding an escaped quote');
  t.equal(duplicateKey('{"":1,"":2}'), '', 'the empty name');
});

t.test('equal names in different objects, and strings that look like names, are not duplicates', async (t) => {
  t.equal(duplicateKey('[{"a":1},{"a":2}]'), undefined);
  t.equal(duplicateKey('{"a":{"a":1},"b":{"a":2}}'), undefined);
  t.equal(duplicateKey('{"a":"a","b":["a","a"]}'), undefined);
  t.equal(duplicateKey('{"a":"x,\\"a\\":1"}'), undefined, 'a comma and quote inside a string value');
  t.equal(duplicateKey('{"quantity":1}'), undefined);
  t.equal(duplicateKey('[1,2,3]'), undefined);
});

/** The reference: JSON text of objects built member by member, with their duplicates counted as they are written. */
const member = fc.string({ unit: 'binary', maxLength: 3 });
type Tree = { kind: 'obj'; members: [string, Tree][] } | { kind: 'arr'; items: Tree[] } | { kind: 'leaf'; value: unknown };
const tree: fc.Arbitrary<Tree> = fc.letrec<{ tree: Tree }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.oneof(fc.integer(), fc.string(), fc.boolean(), fc.constant(null)).map((value): Tree => ({ kind: 'leaf', value })),
    fc.array(fc.tuple(member, tie('tree')), { maxLength: 4 }).map((members): Tree => ({ kind: 'obj', members })),
    fc.array(tie('tree'), { maxLength: 4 }).map((items): Tree => ({ kind: 'arr', items })),
  ),
})).tree;

const write = (n: Tree): string =>
  n.kind === 'leaf' ? JSON.stringify(n.value)
    : n.kind === 'arr' ? `[${n.items.map(write).join(',')}]`
      : `{${n.members.map(([k, v]) => `${JSON.stringify(k)}:${write(v)}`).join(',')}}`;
const hasDuplicate = (n: Tree): boolean =>
  n.kind === 'leaf' ? false
    : n.kind === 'arr' ? n.items.some(hasDuplicate)
      : new Set(n.members.map(([k]) => k)).size < n.members.length || n.members.some(([, v]) => hasDuplicate(v));

t.test('agrees with the reference on generated JSON (fast-check)', async (t) => {
  fc.assert(fc.property(tree, (n) => {
    const text = write(n);
    JSON.parse(text);
    return (duplicateKey(text) !== undefined) === hasDuplicate(n);
  }), { numRuns: 5000 });
  t.pass('5,000 generated texts');
});
