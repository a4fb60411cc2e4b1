/**
 * `stampede all` supervises api, relay, worker, notifier and scheduler as
 * child processes: a child that dies is restarted, and SIGTERM stops them
 * all gracefully. The worker settles only; the notifier tells buyers at a
 * lower CPU priority.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { roleNodeFlags } from '../../src/platform/node-flags.js';
import { waitFor } from '../helpers/system.js';
import { startSupervisor } from '../helpers/supervisor.js';

interface ChildInfo {
  pid: number;
  role: string;
  args: string[];
  nice: number;
}

const ROLES = ['api', 'relay', 'worker', 'notifier', 'scheduler'];

/** Role children of `pid`, read from /proc (no `ps`: a fresh machine may not have procps). */
function childrenOf(pid: number): ChildInfo[] {
  const kids: ChildInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the parenthesised command name: state, ppid, ...
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(fields[1]);
      if (ppid !== pid) continue;
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean);
      const role = args[args.length - 1] ?? '';
      // Only the roles: tsx's esbuild service (`esbuild --service=… --ping`) is a child too on a cold cache.
      if (ROLES.includes(role)) kids.push({ pid: Number(entry), role, args, nice: Number(fields[16]) });
    } catch {
      // The process ended while we looked.
    }
  }
  return kids;
}

t.test('a child that dies is restarted; SIGTERM stops everything', async (t) => {
  const out = startSupervisor(t);
  const sup = out.process;
  const exited = out.exited;
  t.teardown(() => {
    // Children first: once the supervisor is gone they belong to init and cannot be found.
    for (const c of childrenOf(sup.pid!)) process.kill(c.pid, 'SIGKILL');
    if (sup.exitCode === null) sup.kill('SIGKILL');
  });

  // Five tsx processes starting on a loaded two-core CI machine can take a while.
  let seen: ChildInfo[] = [];
  const consumers = (pid: number | undefined) => [...out.text.matchAll(/\{[^\n]*\}/g)].map((m) => { try { return JSON.parse(m[0]) as { pid?: number; msg?: string }; } catch { return {}; } })
    .filter((l) => l.pid === pid && / consuming$/.test(l.msg ?? '')).map((l) => l.msg).sort();
  const roleIn = (kids: ChildInfo[], role: string) => kids.find((c) => c.role === role)?.pid;
  const logged = (msg: string) => [...out.text.matchAll(/\{[^\n]*\}/g)].map((m) => { try { return JSON.parse(m[0]) as { pid?: number; msg?: string; port?: number }; } catch { return {}; } })
    .filter((l) => l.msg === msg);
  // Each worker of a role logs its own "consuming" as its queue is ready: wait for the role's last one (two in the worker, four in the notifier).
  const first = await waitFor('five children, each worker consuming', async () => {
    const kids = (seen = childrenOf(sup.pid!));
    return kids.length === 5 && consumers(roleIn(kids, 'worker')).length >= 2 && consumers(roleIn(kids, 'notifier')).length >= 4 && /scheduler running/.test(out.text)
      && logged('metrics listening').length >= 4 && logged('api listening').length >= 1 ? kids : undefined;
  }, 60_000).catch((err: Error) => {
    throw new Error(`${err.message}\nchildren seen last: ${JSON.stringify(seen)}\nsupervisor log:\n${out.text.slice(-3000)}`);
  });
  t.same(first.map((c) => c.role).sort(), ['api', 'notifier', 'relay', 'scheduler', 'worker']);
  const pidOf = (role: string) => first.find((c) => c.role === role)!.pid;
  t.equal(first.find((c) => c.role === 'notifier')!.nice, 10, 'the notifier runs at niceness 10 (STAMPEDE_NOTIFIER_NICE)');
  t.equal(first.find((c) => c.role === 'worker')!.nice, 0, 'the worker at normal priority');
  t.same(consumers(pidOf('worker')), ['auctions worker consuming', 'orders worker consuming'], 'the worker settles only');
  t.same(consumers(pidOf('notifier')), ['SMS worker consuming', 'e-mail worker consuming', 'notifications worker consuming', 'webhooks worker consuming'], 'the notifier tells buyers and sellers\' webhooks');
  // Each child its own metrics: the api on its own port, every other role on a metrics port of its own, labelled with its role.
  const metricsPorts = new Map(logged('metrics listening').map((l) => [l.pid, l.port]));
  t.equal(new Set(metricsPorts.values()).size, 4, 'four metrics ports, one per role but the api');
  for (const role of ['relay', 'worker', 'notifier', 'scheduler']) {
    const port = metricsPorts.get(pidOf(role));
    const text = port ? await (await fetch(`http://127.0.0.1:${port}/metrics`)).text() : '';
    t.match(text, new RegExp(`role="${role}"`), `the ${role}'s metrics on its own port`);
  }
  const apiPort = logged('api listening').find((l) => l.pid === pidOf('api'))?.port;
  t.match(await (await fetch(`http://127.0.0.1:${apiPort}/metrics`)).text(), /stampede_http_requests_total|role="api"/, 'the api\'s on its own port');
  for (const c of first) t.ok(roleNodeFlags(c.role).every((f) => c.args.includes(f)), `${c.role} runs with ${roleNodeFlags(c.role).join(' ')}`);

  const worker = first.find((c) => c.role === 'worker')!;
  process.kill(worker.pid, 'SIGKILL');
  const again = await waitFor('worker restarted', async () => {
    const w = childrenOf(sup.pid!).find((c) => c.role === 'worker');
    return w && w.pid !== worker.pid ? w : undefined;
  }, 60_000);
  t.not(again.pid, worker.pid, 'a new worker process');
  t.match(out.text, /child died; restarting/, 'the supervisor says so, loudly');
  await waitFor('the new worker consumes', async () => (out.text.match(/orders worker consuming/g) ?? []).length >= 2, 60_000);

  const before = childrenOf(sup.pid!).map((c) => c.pid);
  sup.kill('SIGTERM');
  t.equal(await exited, 0, 'the supervisor exits 0 after its children stopped');
  for (const pid of before) {
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    t.notOk(alive, `child ${pid} is gone`);
  }
  t.match(out.text, /api stopped/);
  t.match(out.text, /worker stopped/);
  t.match(out.text, /relay stopped/);
  t.match(out.text, /scheduler stopped/);
});
