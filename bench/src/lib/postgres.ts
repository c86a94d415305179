/**
 * What the PostgreSQL scenarios share: the server they run against, throw-away schemas, and a CPU
 * meter that also reads the server's processes when they run on this machine.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { constants, type PerformanceEntry, PerformanceObserver } from 'node:perf_hooks';
import type pg from 'pg';

/** The server the scenarios run against: `DATABASE_URL`, else the local test database. */
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A fresh schema name, `bench_<what>_<random>`. */
export const schemaName = (what: string) => `bench_${what}_${randomBytes(4).toString('hex')}`;

/** Drops a schema and everything in it (no error if it does not exist). */
export async function dropSchema(admin: pg.Pool, schema: string): Promise<void> {
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

/**
 * CPU seconds used so far by the PostgreSQL server's processes, when it runs on this machine and
 * /proc shows them (Linux); undefined otherwise. CPU per task is steadier than a rate on a shared
 * machine: it does not count the time spent waiting for a core.
 */
function serverCpuSeconds(): number | undefined {
  if (!/@(127\.0\.0\.1|localhost)[:/]/.test(DATABASE_URL)) return undefined;
  let ticks = 0;
  let seen = false;
  try {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        if (!readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('postgres')) continue;
        // Fields after the command: state is [0], utime [11], stime [12] (clock ticks).
        const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        ticks += Number(fields[11]) + Number(fields[12]);
        seen = true;
      } catch {
        // The process ended while we looked.
      }
    }
  } catch {
    return undefined;
  }
  return seen ? ticks / 100 : undefined;
}

/** CPU used from now on by this process and (when local) the server, per item of work. */
export function cpuMeter() {
  const cpu0 = process.cpuUsage();
  const server0 = serverCpuSeconds();
  return {
    perItem(items: number): { node: number; postgres?: number } {
      const cpu = process.cpuUsage(cpu0);
      const server1 = serverCpuSeconds();
      const per = (micros: number) => Math.round((micros / items) * 10) / 10;
      return {
        node: per(cpu.user + cpu.system),
        ...(server0 !== undefined && server1 !== undefined
          ? { postgres: per((server1 - server0) * 1e6) }
          : {}),
      };
    },
  };
}

/** Garbage collections from now on: how many, and the milliseconds they paused this process. */
export interface GcFigures {
  /** Young-generation collections (scavenges) and their pause, ms. */
  young: number;
  youngMs: number;
  /** Every collection (young, mark-compact, incremental marking steps) and their pause, ms. */
  all: number;
  allMs: number;
}

/** Counts this process's garbage collections from now until `stop()`. */
export function gcMeter(): { stop(): GcFigures } {
  const figures: GcFigures = { young: 0, youngMs: 0, all: 0, allMs: 0 };
  const count = (entries: readonly PerformanceEntry[]) => {
    for (const entry of entries) {
      figures.all++;
      figures.allMs += entry.duration;
      if (
        (entry as { detail?: { kind?: number } }).detail?.kind ===
        constants.NODE_PERFORMANCE_GC_MINOR
      ) {
        figures.young++;
        figures.youngMs += entry.duration;
      }
    }
  };
  const observer = new PerformanceObserver((list) => count(list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  return {
    stop() {
      // Entries are delivered asynchronously; those still queued are read here.
      count(observer.takeRecords());
      observer.disconnect();
      return {
        ...figures,
        youngMs: Math.round(figures.youngMs),
        allMs: Math.round(figures.allMs),
      };
    },
  };
}
