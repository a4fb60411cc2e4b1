/**
 * V8 flags every role process runs with: the size of V8's young generation
 * (its semi-spaces), chosen per role.
 *
 *   - The relay, worker, notifier and scheduler: 64 MB. Each event and
 *     message allocates short-lived objects; with V8's default (16 MB on
 *     64-bit) the scavenger ran so often that garbage collection was a large
 *     share of the worker's CPU; 64 MB cut the settlement worker's CPU per
 *     order.
 *   - The api: 16 MB. A scavenge stops the event loop for as long as it
 *     takes to copy what survives, and with 64 MB those pauses were most of
 *     the accept path's open-loop tail; 16 MB about halved it at the same
 *     closed-loop req/s (`tail-profile`; the figures are in
 *     docs/performance.md, "The accept path's open-loop tail").
 *
 * `stampede all` / `start` and the bench pass them to the processes they
 * spawn; to run one role alone with them:
 *   NODE_OPTIONS=--max-semi-space-size=64 stampede worker
 */
const SEMI_SPACE_MB: Record<string, number> = { api: 16 };
const DEFAULT_SEMI_SPACE_MB = 64;

/** The flags a role's process runs with. */
export const roleNodeFlags = (role: string): string[] => [`--max-semi-space-size=${SEMI_SPACE_MB[role] ?? DEFAULT_SEMI_SPACE_MB}`];

/**
 * The flags for a role's child process: the role's, unless the parent already
 * sets the same flag on its command line or in NODE_OPTIONS (which the child
 * inherits; a command-line flag would override it), e.g.
 * `NODE_OPTIONS=--max-semi-space-size=16 stampede all` on a small host.
 */
export function childNodeFlags(role: string, parentExecArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  const parent = [...parentExecArgv, ...nodeOptions.split(/\s+/).filter(Boolean)];
  const given = (flag: string) => parent.some((a) => a.split('=')[0] === flag.split('=')[0]);
  return [...roleNodeFlags(role).filter((f) => !given(f)), ...parentExecArgv];
}
