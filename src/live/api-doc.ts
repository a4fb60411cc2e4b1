/** The live channel's entry in the OpenAPI document (a WebSocket: OpenAPI describes only its upgrade). */
import type { RouteDoc } from '../platform/http/doc.js';

export const LIVE_DOC: RouteDoc = {
  summary: 'Live updates (WebSocket)',
  description: 'Upgrade to a WebSocket: auction updates and sale stock ticks (topics `auction/<id>`, `sale/<id>`), and, after `{"op":"auth","token"}`, your own notifications (`user/<buyerId>`). Frames and limits: docs/live.md.',
  tags: ['live'],
  responses: { 101: { description: 'Switching Protocols: the WebSocket is open.' } },
  // A GET that is no WebSocket upgrade finds no route; an upgrade while the node shuts down is a 503.
  refusals: ['NOT_FOUND'],
};
