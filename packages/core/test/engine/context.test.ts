import { describe, expect, it } from 'vitest';
import { createContext } from '../../src/engine/context.js';
import { resolveOptions } from '../../src/engine/options.js';
import { isSwitchyardError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { memoryStore } from '../../src/memory/memory-store.js';
import { memoryTransport } from '../../src/memory/memory-transport.js';
import { doubleJob } from './fake-context.js';

describe('createContext', () => {
  it('initialises the store once, every caller sharing it', async () => {
    const store = memoryStore();
    let inits = 0;
    store.init = async () => {
      inits++;
    };
    const settings = resolveOptions({
      jobs: [doubleJob],
      store,
      transports: [memoryTransport()],
      logger: silentLogger,
    });
    const ctx = createContext(settings, store);
    await Promise.all([ctx.init(), ctx.init()]);
    await ctx.init();
    expect(inits).toBe(1);
    expect(ctx.logger).toBe(silentLogger);
    expect(ctx.directory.definition('double')).toBe(doubleJob);
  });

  it('gives a configured transport by name and refuses another with UNKNOWN_TRANSPORT', () => {
    const store = memoryStore();
    const transport = memoryTransport({ name: 'fast' });
    const ctx = createContext(
      resolveOptions({ jobs: [doubleJob], store, transports: [transport], logger: silentLogger }),
      store,
    );
    expect(ctx.transportOf('fast').transport).toBe(transport);
    let thrown: unknown;
    try {
      ctx.transportOf('slow');
    } catch (err) {
      thrown = err;
    }
    expect(isSwitchyardError(thrown) && thrown.code).toBe('UNKNOWN_TRANSPORT');
    expect((thrown as Error).message).toContain('"slow"');
  });
});
