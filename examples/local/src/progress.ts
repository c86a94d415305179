import type { JobView } from '@switchyard/core';

const WIDTH = 28;

/** One line per stage: a bar, done/total, running and failed counts. */
export function renderStages(job: JobView): string[] {
  const nameWidth = Math.max(...job.stages.map((s) => s.name.length));
  return job.stages.map((s) => {
    const done = s.succeeded + s.failed;
    const total = s.sealed ? s.total : Math.max(s.total, done);
    const ratio = total > 0 ? done / total : s.status === 'complete' ? 1 : 0;
    const filled = Math.round(ratio * WIDTH);
    const bar = `${'█'.repeat(filled)}${'░'.repeat(WIDTH - filled)}`;
    const counts = `${done}/${total}${s.sealed ? '' : '+'}`;
    const extra = [s.running ? `running ${s.running}` : '', s.failed ? `failed ${s.failed}` : '']
      .filter(Boolean)
      .join('  ');
    return `${s.name.padEnd(nameWidth)}  ${bar}  ${counts.padStart(15)}  ${s.status.padEnd(11)} ${extra}`;
  });
}

/** Redraws stage bars in place on a TTY; prints a line every few seconds otherwise. */
export class ProgressView {
  private lines = 0;
  private lastPlain = 0;

  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {}

  update(job: JobView): void {
    const lines = renderStages(job);
    if (this.out.isTTY) {
      if (this.lines > 0) this.out.write(`\x1b[${this.lines}A`);
      for (const line of lines) this.out.write(`\x1b[2K${line}\n`);
      this.lines = lines.length;
    } else if (Date.now() - this.lastPlain > 2000 || job.status !== 'running') {
      this.lastPlain = Date.now();
      this.out.write(
        `${lines.map((l) => l.replace(/[█░]+/, '').replace(/\s+/g, ' ')).join(' | ')}\n`,
      );
    }
  }
}
