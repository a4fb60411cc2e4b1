/**
 * Request bodies as the API reads them: JSON (RFC 8259) whose objects name
 * each member once (I-JSON, RFC 7493). JSON.parse keeps the last of two
 * equal names, another parser may keep the first: `{"quantity":1,
 * "quantity":100}` would be two different requests to a buyer's client and
 * to us, so it is refused.
 */

/**
 * The first name that appears twice in one object of `text` (already
 * parsed, so valid JSON), compared as decoded; undefined when none does.
 * A text without a comma has no object with two members, so the usual small
 * body is not scanned.
 */
export function duplicateKey(text: string): string | undefined {
  if (!text.includes(',')) return undefined;
  // One entry per open object (the names seen in it: a list while short, a set past SHORT) or array (null).
  const open: (string[] | Set<string> | null)[] = [];
  let atName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      let end = i + 1;
      let escaped = false;
      for (let d = text.charCodeAt(end); d !== QUOTE && end < text.length; d = text.charCodeAt(end)) {
        if (d === BACKSLASH) {
          escaped = true;
          end += 2;
        } else {
          end += 1;
        }
      }
      if (atName) {
        const name = escaped ? (JSON.parse(text.slice(i, end + 1)) as string) : text.slice(i + 1, end);
        const names = open[open.length - 1]!;
        if (Array.isArray(names)) {
          if (names.includes(name)) return name;
          names.push(name);
          if (names.length > SHORT) open[open.length - 1] = new Set(names);
        } else {
          if (names.has(name)) return name;
          names.add(name);
        }
        atName = false;
      }
      i = end;
    } else if (c === OPEN_OBJECT) {
      open.push([]);
      atName = true;
    } else if (c === OPEN_ARRAY) {
      open.push(null);
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      open.pop();
      atName = false;
    } else if (c === COMMA) {
      atName = open[open.length - 1] != null;
    }
  }
  return undefined;
}

/** Names an object may have before they are looked up in a set rather than a list. */
const SHORT = 16;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
