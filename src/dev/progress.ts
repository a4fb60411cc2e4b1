/** How `stampede seed` shows its progress: bars on a terminal, a line at every tenth otherwise (CI, log files). */
export async function seedProgress(): Promise<{ update: (phase: string, done: number, total: number) => void; stop: () => void }> {
  if (!process.stderr.isTTY) {
    const shown = new Map<string, number>();
    return {
      update(phase, done, total) {
        const tenth = Math.floor((done / total) * 10);
        if ((shown.get(phase) ?? -1) < tenth) {
          shown.set(phase, tenth);
          process.stderr.write(`seed: ${phase} ${done}/${total}\n`);
        }
      },
      stop() {},
    };
  }
  const { default: cliProgress } = await import('cli-progress');
  const bars = new cliProgress.MultiBar({ format: '{phase} [{bar}] {value}/{total} {duration}s', hideCursor: true, stream: process.stderr }, cliProgress.Presets.shades_classic);
  const byPhase = new Map<string, InstanceType<typeof cliProgress.SingleBar>>();
  return {
    update(phase, done, total) {
      let bar = byPhase.get(phase);
      if (!bar) byPhase.set(phase, (bar = bars.create(total, 0, { phase: phase.padEnd(8) })));
      bar.update(done);
    },
    stop: () => bars.stop(),
  };
}

