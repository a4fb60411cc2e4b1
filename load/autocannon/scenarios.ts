/** load/scenarios.json, the load shapes the k6 scripts and the autocannon runners share, as the runners read it. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../src/platform/paths.js';

export interface Scenarios {
  connections: number;
  baseline: { durationSeconds: number };
  acceptPath: { durationSeconds: number; sales: number; stockPerSale: number; perBuyerLimit: number };
  flashSale: { stock: number; perBuyerLimit: number; buyers: number };
  soldOutStorm: { durationSeconds: number };
  bidWar: { durationSeconds: number; startPrice: number; increment: number };
}

export const scenarios: Scenarios = JSON.parse(readFileSync(join(projectRoot, 'load', 'scenarios.json'), 'utf8'));
