/**
 * V8 flags every role process runs with. Each request, event and message
 * allocates short-lived objects; with V8's default young generation (16 MB
 * semi-spaces on 64-bit) the scavenger ran so often that garbage collection
 * was a large share of the worker's CPU; 64 MB semi-spaces cut the
 * settlement worker's CPU per order (docs/performance.md has the A/B runs).
 *
 * `stampede all` / `start` and the bench pass them to the processes they
 * spawn; to run one role alone with them:
 *   NODE_OPTIONS=--max-semi-space-size=64 stampede worker
 */
export const ROLE_NODE_FLAGS = ['--max-semi-space-size=64'];

/**
 * The flags for a child process: ours, unless the parent already sets the
 * same flag on its command line or in NODE_OPTIONS (which the child
 * inherits; a command-line flag would override it), e.g.
 * `NODE_OPTIONS=--max-semi-space-size=16 stampede all` on a small host.
 */
export function childNodeFlags(parentExecArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  const parent = [...parentExecArgv, ...nodeOptions.split(/\s+/).filter(Boolean)];
  const given = (flag: string) => parent.some((a) => a.split('=')[0] === flag.split('=')[0]);
  return [...ROLE_NODE_FLAGS.filter((f) => !given(f)), ...parentExecArgv];
}
