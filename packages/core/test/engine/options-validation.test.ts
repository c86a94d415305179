/**
 * Options `resolveOptions` accepts although they are invalid, and what they break. Every test here
 * fails against the engine as it is: each is a reproduction of a defect to fix in options.ts.
 */
import { describe, expect, it } from 'vitest';
import { resolveOptions } from '../../src/engine/options.js';
import type { SwitchyardOptions } from '../../src/engine/types.js';
import { ValidationError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { memoryStore } from '../../src/memory/memory-store.js';
import { memoryTransport } from '../../src/memory/memory-transport.js';
import { doubleJob } from './fake-context.js';

type Options = SwitchyardOptions<readonly { readonly name: string }[]>;
const options = (overrides: Partial<Options>): Options => ({
  jobs: [doubleJob],
  store: memoryStore(),
  transports: [memoryTransport()],
  logger: silentLogger,
  ...overrides,
});

function invalidField(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).issues?.[0]?.path;
  }
  return undefined;
}

describe('options that are refused, naming the field', () => {
  it.each([
    [{ maxAttempts: 0 }, 'retry.maxAttempts'],
    [{ maxAttempts: 1.5 }, 'retry.maxAttempts'],
    [{ initialDelayMs: Number.NaN }, 'retry.initialDelayMs'],
    [{ initialDelayMs: -1 }, 'retry.initialDelayMs'],
    [{ factor: Number.NaN }, 'retry.factor'],
    [{ maxDelayMs: -5 }, 'retry.maxDelayMs'],
  ] as [Options['retry'], string][])('retry %o is refused naming %s', (retry, field) => {
    expect(invalidField(() => resolveOptions(options({ retry })))).toBe(field);
  });

  it.each([
    [{ maxMessages: Number.NaN }, 'batching.maxMessages'],
    [{ maxBytes: Number.NaN }, 'batching.maxBytes'],
    [{ concurrency: Number.NaN }, 'batching.concurrency'],
    [{ chunkSize: 1.5 }, 'batching.chunkSize'],
    [{ window: 0 }, 'batching.window'],
    [{ window: Number.POSITIVE_INFINITY }, 'batching.window'],
    [{ window: true }, 'batching.window'],
    [{ memory: { window: -1 } }, 'batching.memory.window'],
  ] as [Options['batching'], string][])('batching %o is refused naming %s', (batching, field) => {
    expect(invalidField(() => resolveOptions(options({ batching })))).toBe(field);
  });

  it('names the transport in a per-transport batching error', () => {
    const field = invalidField(() =>
      resolveOptions(
        options({ transports: { fast: memoryTransport() }, batching: { fast: { packTasks: 0 } } }),
      ),
    );
    expect(field).toBe('batching.fast.packTasks');
  });
});
