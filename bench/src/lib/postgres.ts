/**
 * What the PostgreSQL scenarios share: the server they run against, throw-away schemas, and a CPU
 * meter that also reads the server's processes when they run on this machine.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
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
