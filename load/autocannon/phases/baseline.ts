/**
 * The baseline: the bare uWS hello-world (hello-server.ts) under the same
 * closed loop as the api phases, the ceiling this machine puts on any uWS
 * endpoint. Every ratio in the report is against a baseline measured next to it.
 */
import { cpuPerRequest, cpuSnapshot } from '../cpu.js';
import { startHelloServer, stopChild } from '../processes.js';
import { runClosedLoop } from '../closed-loop.js';
import { scenarios } from '../scenarios.js';
import type { Phase } from '../results.js';
import { env, log, scaled, settings } from './context.js';

export async function measureBaseline(name: string): Promise<Phase> {
  const hello = await startHelloServer(env, settings.helloPort);
  const cpuBefore = cpuSnapshot();
  const baseline = await runClosedLoop(name, `http://127.0.0.1:${settings.helloPort}/`, {
    connections: settings.connections, durationS: scaled(scenarios.baseline.durationSeconds),
  });
  baseline.cpuUsPerRequest = cpuPerRequest(cpuBefore, cpuSnapshot(), [hello.pid!, process.pid], baseline.requests);
  baseline.note = `CPU per request: ${baseline.cpuUsPerRequest} µs (server + autocannon)`;
  await stopChild(hello);
  log.info(baseline, 'baseline');
  return baseline;
}
