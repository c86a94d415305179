import { memoryStore, memoryTransport } from '@switchyard/core';
import { runHello } from './hello.js';
const w = process.argv[2] === 'false' ? false : Number(process.argv[2]);
const conc = Number(process.argv[3] ?? 512);
const d = () => ({ store: memoryStore(), transport: memoryTransport() });
await runHello(2000, d(), { batching: { window: w }, concurrency: conc });
const r = await runHello(100000, d(), { batching: { window: w }, concurrency: conc });
console.log(process.argv[2], conc, Math.round(r.tasksPerSecond));
