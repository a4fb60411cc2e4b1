/**
 * CloudEvents 1.0 envelopes. Outbox entries carry the fields flat
 * (type, id, time in ms, subject, data as JSON text); the relay wraps them
 * without re-parsing `data`.
 */
export interface OutboxEntry {
  stream: string;
  streamId: string;
  type: string;
  id: string;
  time: number;
  subject: string;
  data: string;
}

export interface CloudEvent<T = unknown> {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  time: string;
  subject?: string;
  datacontenttype: 'application/json';
  data: T;
}

export function outboxEntryOf(stream: string, streamId: string, fields: string[]): OutboxEntry {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  return { stream, streamId, type: f.type ?? '', id: f.id ?? '', time: Number(f.time), subject: f.subject ?? '', data: f.data ?? 'null' };
}

export function cloudEventJson(e: OutboxEntry, source: string): string {
  return (
    '{"specversion":"1.0","id":' + JSON.stringify(e.id) +
    ',"source":' + JSON.stringify(source) +
    ',"type":' + JSON.stringify(e.type) +
    ',"time":"' + new Date(e.time).toISOString() + '"' +
    ',"subject":' + JSON.stringify(e.subject) +
    ',"datacontenttype":"application/json","data":' + e.data + '}'
  );
}
