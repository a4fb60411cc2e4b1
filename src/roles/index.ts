/**
 * Every process role exports start/stop, so tests boot a real api, relay or
 * worker in-process and the CLI runs the same code. Each role is its own
 * module: the CLI imports only the one it runs, so a relay or worker does not
 * load the HTTP server, and starts in a fraction of the time.
 */
export type { Role } from './role.js';
export { startApi, type ApiHandle } from './api.js';
export { startRelay } from './relay.js';
export { startWorker } from './worker.js';
export { startNotifier } from './notifier.js';
export { startScheduler } from './scheduler.js';
export { startMailcatcher } from './mailcatcher.js';
export type { Pool } from '../platform/db/pool.js';
export type { Redis } from '../platform/redis/client.js';
