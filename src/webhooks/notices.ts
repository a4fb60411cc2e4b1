/** What a seller is told when an endpoint of theirs is disabled for failing. */
import type { EndpointRecord } from './repository.js';

export function disabledNoticeOf(e: EndpointRecord, sellerId: string) {
  const since = e.failingSince?.toISOString() ?? 'a while';
  return {
    eventId: `${e.id}:disabled:${e.disabledAt?.getTime() ?? 0}`,
    sellerId,
    title: 'A webhook endpoint was disabled',
    body: `${e.url} has failed every delivery since ${since}, so Stampede stopped sending to it. Fix it, then enable it again (PATCH /v1/webhooks/${e.id}) and recover what failed (POST /v1/webhooks/${e.id}/recover).`,
    data: { webhookId: e.id, url: e.url, failingSince: e.failingSince?.toISOString() ?? null, disabledAt: e.disabledAt?.toISOString() ?? null },
  };
}
