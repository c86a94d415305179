import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/engine/defaults.js';
import { prefetchOf, resolveOptions, resolveWorkOptions } from '../../src/engine/options.js';
import type { SwitchyardOptions, WorkOptions } from '../../src/engine/types.js';
import { ValidationError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { memoryStore } from '../../src/memory/memory-store.js';
import { memoryTransport } from '../../src/memory/memory-transport.js';
import { doubleJob, testJob } from './fake-context.js';

type Options = SwitchyardOptions<readonly { readonly name: string }[]>;

function options(overrides: Partial<Options> = {}): Options {
  return {
    jobs: [doubleJob],
    store: memoryStore(),
    transports: [memoryTransport()],
    logger: silentLogger,
    ...overrides,
  };
}

/** The ValidationError `fn` throws, and the field its first issue names. */
function invalidField(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    const issue = (err as ValidationError).issues?.[0];
    expect((err as ValidationError).message).toContain(issue?.path);
    return issue?.path;
  }
  throw new Error('expected a ValidationError');
}

describe('resolveOptions', () => {
  it('takes every default from DEFAULTS', () => {
    const settings = resolveOptions(options());
    expect(settings.retry).toEqual(DEFAULTS.retry);
    expect(settings.reconcile).toEqual({
      olderThanMs: DEFAULTS.reconcile.olderThanMs,
      limit: DEFAULTS.reconcile.limit,
      intervalMs: DEFAULTS.reconcile.intervalMs,
    });
    expect(settings.cancelCheckIntervalMs).toBe(DEFAULTS.cancelCheckIntervalMs);
    expect(settings.flowControl).toEqual({
      slotLeaseMs: DEFAULTS.flowControl.slotLeaseMs,
      maxWaitMs: DEFAULTS.flowControl.maxWaitMs,
    });
    expect(settings.defaultTransport).toBe('memory');
    const policy = settings.transports.get('memory')!.policy;
    expect(policy.packTasks).toBe(DEFAULTS.batching.packTasks);
    expect(policy.chunkSize).toBe(DEFAULTS.batching.chunkSize);
    expect(policy.window).toBe(DEFAULTS.batching.window);
    expect([...settings.jobs.keys()]).toEqual(['double']);
    expect(settings.retention).toEqual({});
  });

  it('checks flowControl: a lease of at least 300 ms, a positive integer wait', () => {
    const set = resolveOptions(options({ flowControl: { slotLeaseMs: 2000, maxWaitMs: 50 } }));
    expect(set.flowControl).toEqual({ slotLeaseMs: 2000, maxWaitMs: 50 });
    expect(invalidField(() => resolveOptions(options({ flowControl: { slotLeaseMs: 299 } })))).toBe(
      'flowControl.slotLeaseMs',
    );
    expect(invalidField(() => resolveOptions(options({ flowControl: { maxWaitMs: 0.5 } })))).toBe(
      'flowControl.maxWaitMs',
    );
  });

  it('lays a retry policy over the defaults field by field', () => {
    const settings = resolveOptions(options({ retry: { maxAttempts: 7 } }));
    expect(settings.retry).toEqual({ ...DEFAULTS.retry, maxAttempts: 7 });
  });

  it('names transports by their record keys, or by transport.name in a list', () => {
    const byKey = resolveOptions(
      options({ transports: { fast: memoryTransport(), slow: memoryTransport() } }),
    );
    expect([...byKey.transports.keys()]).toEqual(['fast', 'slow']);
    expect(byKey.defaultTransport).toBe('fast');
    const chosen = resolveOptions(
      options({
        transports: [memoryTransport({ name: 'a' }), memoryTransport({ name: 'b' })],
        defaultTransport: 'b',
      }),
    );
    expect(chosen.defaultTransport).toBe('b');
  });

  it.each([
    [
      'a duplicate job name',
      { jobs: [doubleJob, testJob({ name: 'double', stages: [{}] })] },
      'jobs',
    ],
    ['no transport', { transports: [] }, 'transports'],
    [
      'a duplicate transport name',
      { transports: [memoryTransport(), memoryTransport()] },
      'transports',
    ],
    ['an unknown default transport', { defaultTransport: 'nope' }, 'defaultTransport'],
    ['packTasks 0', { batching: { packTasks: 0 } }, 'batching.packTasks'],
    ['packTasks 1001', { batching: { packTasks: 1001 } }, 'batching.packTasks'],
    ['packTasks 1.5', { batching: { packTasks: 1.5 } }, 'batching.packTasks'],
    ['a negative reconcile interval', { reconcile: { intervalMs: -1 } }, 'reconcile.intervalMs'],
    ['reconcile limit 0', { reconcile: { limit: 0 } }, 'reconcile.limit'],
    ['reconcile limit 2.5', { reconcile: { limit: 2.5 } }, 'reconcile.limit'],
    ['reconcile olderThanMs 0', { reconcile: { olderThanMs: 0 } }, 'reconcile.olderThanMs'],
    [
      'reconcile olderThanMs NaN',
      { reconcile: { olderThanMs: Number.NaN } },
      'reconcile.olderThanMs',
    ],
    ['a cancel check every 5 ms', { cancelCheckIntervalMs: 5 }, 'cancelCheckIntervalMs'],
    ['a cancel check interval NaN', { cancelCheckIntervalMs: Number.NaN }, 'cancelCheckIntervalMs'],
    ['a retention that is no duration', { retention: { failed: '3 weeks' } }, 'retention.failed'],
    ['a negative retention', { retention: { succeeded: -1 } }, 'retention.succeeded'],
    ['a retention of an open status', { retention: { running: '1d' } }, 'retention.running'],
    ['a retention that is no object', { retention: '7d' }, 'retention'],
  ] as [string, Partial<Options>, string][])('rejects %s, naming the field', (_, bad, field) => {
    expect(invalidField(() => resolveOptions(options(bad)))).toBe(field);
  });

  it('keeps a cancel check interval of 10 ms or more', () => {
    expect(resolveOptions(options({ cancelCheckIntervalMs: 10 })).cancelCheckIntervalMs).toBe(10);
  });

  it('reads retention per status as durations or milliseconds', () => {
    const settings = resolveOptions(
      options({ retention: { succeeded: '7d', failed: '12h', cancelled: 90_000 } }),
    );
    expect(settings.retention).toEqual({
      succeeded: 7 * 86_400_000,
      failed: 12 * 3_600_000,
      cancelled: 90_000,
    });
    expect(() => resolveOptions(options({ retention: { failed: 'soon' as '1d' } }))).toThrow(
      /^retention\.failed: /,
    );
  });

  it('accepts a reconcile interval of 0 (disabled)', () => {
    expect(resolveOptions(options({ reconcile: { intervalMs: 0 } })).reconcile.intervalMs).toBe(0);
  });

  it('applies batching shared by every transport, or per transport name', () => {
    const transports = { a: memoryTransport(), b: memoryTransport() };
    const shared = resolveOptions(options({ transports, batching: { packTasks: 5 } }));
    expect(shared.transports.get('a')!.policy.packTasks).toBe(5);
    expect(shared.transports.get('b')!.policy.packTasks).toBe(5);
    const perName = resolveOptions(
      options({ transports, batching: { a: { packTasks: 10, chunkSize: 50 } } }),
    );
    expect(perName.transports.get('a')!.policy).toMatchObject({ packTasks: 10, chunkSize: 50 });
    expect(perName.transports.get('b')!.policy).toMatchObject({
      packTasks: DEFAULTS.batching.packTasks,
      chunkSize: DEFAULTS.batching.chunkSize,
    });
  });

  it("windows a stage as batching says, else as the transport recommends, else by the engine's default", () => {
    const windowOf = (limits: { window?: number }, batching?: { window?: number | false }) => {
      const transport = memoryTransport({ limits });
      const settings = resolveOptions(options({ transports: [transport], batching }));
      return settings.transports.get('memory')!.policy.window;
    };
    expect(windowOf({})).toBe(DEFAULTS.batching.window);
    expect(windowOf({ window: 64 })).toBe(64);
    expect(windowOf({ window: 64 }, { window: 300 })).toBe(300);
    expect(windowOf({ window: 64 }, { window: false })).toBeUndefined();
    // A driver's bad recommendation is named, not applied.
    expect(invalidField(() => windowOf({ window: 0 }))).toBe('limits.window');
    expect(invalidField(() => windowOf({ window: 2.5 }))).toBe('limits.window');
  });

  it('caps batch sizes at what the transport allows', () => {
    const transport = memoryTransport({ limits: { maxBatchMessages: 10, maxBatchBytes: 1000 } });
    const settings = resolveOptions(
      options({ transports: [transport], batching: { maxMessages: 500, maxBytes: 10_000 } }),
    );
    expect(settings.transports.get('memory')!.policy).toMatchObject({
      maxMessages: 10,
      maxBytes: 1000,
    });
  });
});

describe('resolveWorkOptions', () => {
  it('takes every default from DEFAULTS', () => {
    expect(resolveWorkOptions({})).toEqual({
      concurrency: DEFAULTS.work.concurrency,
      prefetch: undefined,
      transports: undefined,
      visibilityTimeoutMs: DEFAULTS.work.visibilityTimeoutMs,
      waitMs: DEFAULTS.work.waitMs,
      receivers: DEFAULTS.work.receivers,
      signal: undefined,
    });
  });

  it('prefetches as work() says, else as the transport recommends per slot, else not at all', () => {
    const limits = memoryTransport().limits;
    const work = (options: WorkOptions) => resolveWorkOptions(options);
    expect(prefetchOf(work({}), limits)).toBe(DEFAULTS.work.prefetch);
    expect(prefetchOf(work({ concurrency: 10 }), { ...limits, prefetchPerSlot: 8 })).toBe(80);
    expect(prefetchOf(work({ prefetch: 0 }), { ...limits, prefetchPerSlot: 8 })).toBe(0);
    expect(prefetchOf(work({ prefetch: 5 }), limits)).toBe(5);
    // A driver's nonsense recommends nothing.
    for (const prefetchPerSlot of [Number.NaN, -1, Number.POSITIVE_INFINITY])
      expect(prefetchOf(work({}), { ...limits, prefetchPerSlot })).toBe(DEFAULTS.work.prefetch);
  });

  it.each([
    ['concurrency 0', { concurrency: 0 }, 'concurrency'],
    ['concurrency 1.5', { concurrency: 1.5 }, 'concurrency'],
    ['negative concurrency', { concurrency: -4 }, 'concurrency'],
    ['receivers 0', { receivers: 0 }, 'receivers'],
    ['negative prefetch', { prefetch: -1 }, 'prefetch'],
    ['prefetch 2.5', { prefetch: 2.5 }, 'prefetch'],
    ['visibilityTimeoutMs 0', { visibilityTimeoutMs: 0 }, 'visibilityTimeoutMs'],
    ['negative waitMs', { waitMs: -1 }, 'waitMs'],
    ['infinite waitMs', { waitMs: Number.POSITIVE_INFINITY }, 'waitMs'],
  ] as [string, WorkOptions, string][])('rejects %s, naming the field', (_, bad, field) => {
    expect(invalidField(() => resolveWorkOptions(bad))).toBe(field);
  });

  it('keeps what it is given when valid', () => {
    const signal = new AbortController().signal;
    expect(
      resolveWorkOptions({ concurrency: 3, waitMs: 0, receivers: 1, transports: ['x'], signal }),
    ).toMatchObject({ concurrency: 3, waitMs: 0, receivers: 1, transports: ['x'], signal });
  });
});
