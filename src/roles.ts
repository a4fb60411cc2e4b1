/**
 * Every process role exports start/stop, so tests boot a real api, relay or
 * worker in-process and the CLI runs the same code. Each role is its own
 * module: the CLI imports only the one it runs, so a relay or worker does not
 * load the HTTP server, and starts in a fraction of the time.
 */
export type { Role } from './roles/role.js';
export { startApi, type ApiHandle } from './roles/api.js';
export { startRelay } from './roles/relay.js';
export { startWorker } from './roles/worker.js';
export { startScheduler } from './roles/scheduler.js';
export type { Pool } from './db/pool.js';
export type { Redis } from './redis/client.js';
