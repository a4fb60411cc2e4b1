/**
 * The operators' live board: the page at GET /ops (plain HTML and JS, uPlot
 * for its charts, everything served from here so it works offline), one
 * snapshot as JSON, and the same snapshots as Server-Sent Events. The page
 * sends the operator's key in a header (fetch, not EventSource, which cannot
 * send one); the key is checked again before every snapshot, so a revoked
 * key's stream ends within the key cache's lifetime.
 */
import type { HttpServer } from '../platform/http/server.js';
import type { EventStreams } from '../platform/http/sse.js';
import type { RouteKit } from '../platform/http/route-kit.js';
import { serveFile } from '../platform/http/static.js';
import type { OpsBoard } from './board.js';
import { boardDocs } from './api-doc.js';

const PAGE_FILES: [path: string, file: string][] = [
  ['/ops', 'web/ops/index.html'],
  ['/ops/ops.js', 'web/ops/ops.js'],
  ['/ops/ops.css', 'web/ops/ops.css'],
  ['/ops/uPlot.iife.min.js', 'node_modules/uplot/dist/uPlot.iife.min.js'],
  ['/ops/uPlot.min.css', 'node_modules/uplot/dist/uPlot.min.css'],
];

export function registerBoardRoutes(http: HttpServer, streams: EventStreams, k: RouteKit, board: OpsBoard): void {
  http.route('get', '/v1/ops/board', async (ctx) => {
    await k.principalOf(ctx, ['operator']);
    return { status: 200, body: await board.snapshot() };
  }, { doc: boardDocs.snapshot });
  streams.route('/v1/ops/board/stream', async (ctx) => {
    await k.principalOf(ctx, ['operator']);
    return (stream) => {
      let sent = 0;
      const stop = board.watch((json) => {
        k.principalOf(ctx, ['operator']).then(
          () => stream.send(String(++sent), json),
          () => stream.close(),
        );
      });
      stream.onClose(stop);
    };
  }, boardDocs.stream);
  for (const [path, file] of PAGE_FILES) serveFile(http, path, file, {}, { tags: ['pages'], summary: path === '/ops' ? 'The live board (a page for operators)' : `The live board's ${path.split('/').pop()}` });
}
