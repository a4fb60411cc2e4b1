/** The live channels' metrics on an api node: connections, subscriptions, what went out, what was dropped. */
import type { EventStreams } from '../platform/http/sse.js';
import { countersFrom, gaugesFrom, type Registry } from '../platform/metrics/registry.js';
import type { LiveHub } from './hub.js';

export function registerLiveMetrics(registry: Registry, hub: LiveHub, streams: EventStreams): void {
  gaugesFrom(registry, 'stampede_live_connections', 'Open live connections on this node: WebSocket (ws /v1/live) and Server-Sent Events streams.', ['transport'], () => [
    [{ transport: 'ws' }, hub.connections], [{ transport: 'sse' }, streams.count],
  ]);
  gaugesFrom(registry, 'stampede_live_subscriptions', 'Topic subscriptions held by this node\'s WebSocket connections.', [], () => [[{}, hub.subscriptions]]);
  countersFrom(registry, 'stampede_live_messages_total', 'Live messages published to this node\'s WebSocket topics: auction and stock updates forwarded, notifications pushed.', ['kind'], () => [
    [{ kind: 'update' }, hub.forwarded], [{ kind: 'notification' }, hub.pushed],
  ]);
  countersFrom(registry, 'stampede_live_slow_readers_total', 'Readers disconnected because they fell behind by more than the backpressure limit (what they had not read is dropped).', ['transport'], () => [
    [{ transport: 'ws' }, hub.slowReaders], [{ transport: 'sse' }, streams.slowReaders],
  ]);
  countersFrom(registry, 'stampede_live_closed_abnormally_total', 'WebSocket connections closed without a close frame (1006): the network, or uWS closing a reader over its backpressure limit while publishing.', [], () => [
    [{}, hub.closedAbnormally],
  ]);
}
