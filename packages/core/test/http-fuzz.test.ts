import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { makeApi, TOKEN } from './http-helpers.js';

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'];
const ROUTES = [
  (s: string) => `/api/jobs/submit/${s}`,
  (s: string) => `/api/jobs/status/${s}`,
  (s: string) => `/api/jobs/${s}/tasks`,
  (s: string) => `/api/jobs/${s}/cancel`,
  // The operations routes: from OPERATION_ROUTES on.
  () => '/api/jobs',
  (s: string) => `/api/jobs/${s}/retry`,
  () => '/api/jobs/retry',
  () => '/api/jobs/cancel',
  () => '/api/jobs/purge',
  () => '/api/metrics/comparison',
  () => '/api/schedules',
  (s: string) => `/api/schedules/${s}/trigger`,
  () => '/healthz',
  () => '/readyz',
  (s: string) => `/${s}`,
  (s: string) => `/api/${s}/${s}`,
];
const OPERATION_ROUTES = [4, 5, 6, 7, 8];
const KNOWN_STATUSES = new Set([200, 202, 400, 401, 404, 405, 409, 413, 415, 503]);

const isoOrJunk = fc.oneof(
  fc
    .date({ min: new Date(0), max: new Date('2100-01-01'), noInvalidDate: true })
    .map((d) => d.toISOString()),
  fc.constantFrom('2026-01-01', 'yesterday', '1', '2026-13-45T99:99Z', ''),
  fc.integer(),
);

/** A JSON text: values with `__proto__` / `constructor` keys, deep nesting, huge strings. */
const jsonText = fc.oneof(
  { weight: 5, arbitrary: fc.json({ maxDepth: 4 }) },
  {
    weight: 5,
    arbitrary: fc
      .record(
        {
          n: fc.oneof(
            fc.integer({ min: -5, max: 2000 }),
            fc.double(),
            fc.string(),
            fc.constant(null),
          ),
          label: fc.oneof(fc.string({ maxLength: 30 }), fc.integer()),
          use_service_bus: fc.oneof(fc.boolean(), fc.string({ maxLength: 3 })),
          transport: fc.constantFrom('memory', 'servicebus', '', 'nope', 7),
          idempotencyKey: fc.oneof(fc.string({ maxLength: 250 }), fc.integer()),
          params: fc.jsonValue({ maxDepth: 2 }),
        },
        { requiredKeys: [] },
      )
      .map((o) => JSON.stringify(o)),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.constantFrom('__proto__', 'constructor', 'prototype'),
        fc.jsonValue({ maxDepth: 3 }),
      )
      .map(([k, v]) => `{"n":1,"${k}":${JSON.stringify(v)},"params":{"${k}":{"polluted":true}}}`),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 1, max: 20_000 }), fc.constantFrom('[', '{"a":'))
      .map(([depth, open]) =>
        open === '['
          ? `${'['.repeat(depth)}${']'.repeat(depth)}`
          : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`,
      ),
  },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 10_000, max: 200_000 })
      .map((len) => `{"n":1,"label":"${'x'.repeat(len)}"}`),
  },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
  {
    // The operations routes' fields (filters, retry, purge), each of a right or a wrong type.
    weight: 4,
    arbitrary: fc
      .record(
        {
          status: fc.oneof(
            fc.constantFrom('failed', 'queued', 'running', 'succeeded', 'cancelled', 'scheduled'),
            fc.array(fc.constantFrom('failed', 'cancelled', 'x'), { maxLength: 3 }),
            fc.string({ maxLength: 10 }),
            fc.integer(),
          ),
          name: fc.oneof(
            fc.constantFrom('squares', 'a\u0000b', 'x'.repeat(300)),
            fc.string({ maxLength: 20 }),
          ),
          transport: fc.constantFrom('memory', 'servicebus', '', 7),
          createdAfter: isoOrJunk,
          createdBefore: isoOrJunk,
          created_after: isoOrJunk,
          finishedBefore: isoOrJunk,
          olderThan: fc.oneof(
            fc.constantFrom('7d', '0s', '1.5h', 'a week', '-1d'),
            fc.double(),
            fc.constant({}),
          ),
          limit: fc.oneof(fc.integer({ min: -2, max: 2000 }), fc.string({ maxLength: 5 })),
          stage: fc.oneof(
            fc.integer({ min: -2, max: 3 }),
            fc.constantFrom('square', ''),
            fc.double(),
          ),
          taskIds: fc.oneof(
            fc.array(fc.string({ maxLength: 40 }), { maxLength: 3 }),
            fc.string(),
            fc.constant([]),
          ),
        },
        { requiredKeys: [] },
      )
      .map((o) => JSON.stringify(o)),
  },
  {
    // Well-formed submits, inline and as the envelope, so creation (202) is reached too.
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.integer({ min: 0, max: 1000 }),
        fc.string({ minLength: 1, maxLength: 40 }),
        fc.boolean(),
      )
      .map(([n, idempotencyKey, envelope]) =>
        JSON.stringify(envelope ? { params: { n }, idempotencyKey } : { n, idempotencyKey }),
      ),
  },
);

const body = fc.oneof(
  { weight: 8, arbitrary: jsonText },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }) },
  { weight: 1, arbitrary: fc.constant(undefined) },
);

const segment = fc.oneof(
  { weight: 6, arbitrary: fc.constant('squares') },
  fc.constantFrom('squares', 'hello_world', 'x', 'squares-abc', '%E0%A4%A', '..', '%00', '%2F'),
  fc.string({ unit: 'grapheme', maxLength: 40 }).map(encodeURIComponent),
  fc.string({ maxLength: 300 }).map(encodeURIComponent),
);

const request = fc.record({
  method: fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom('GET', 'POST') },
    { weight: 1, arbitrary: fc.constantFrom(...METHODS) },
    {
      weight: 1,
      arbitrary: fc
        .stringMatching(/^[A-Z]{1,7}$/)
        .filter((m) => !['CONNECT', 'TRACE', 'TRACK'].includes(m)),
    },
  ),
  // The submit route (0) and the operations routes are where the parsing is: weight them.
  route: fc.oneof(
    { weight: 5, arbitrary: fc.constant(0) },
    { weight: 4, arbitrary: fc.constantFrom(...OPERATION_ROUTES) },
    { weight: 5, arbitrary: fc.nat(ROUTES.length - 1) },
  ),
  segment,
  query: fc.dictionary(
    fc.constantFrom(
      'stage',
      'status',
      'cursor',
      'limit',
      'x',
      'name',
      'transport',
      'createdAfter',
      'createdBefore',
      'created_after',
    ),
    fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.integer().map(String),
      fc.constantFrom('failed', 'square', '0', 'queued,failed', 'squares', 'a\u0000b'),
      isoOrJunk.map(String),
    ),
  ),
  contentType: fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'text/plain',
    'application/x+json',
    '',
    'multipart/form-data; boundary=x',
  ),
  auth: fc.oneof(
    { weight: 8, arbitrary: fc.constant(`Bearer ${TOKEN}`) },
    {
      weight: 1,
      arbitrary: fc.string({ maxLength: 60 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
    },
    { weight: 1, arbitrary: fc.constant('') },
  ),
  extraHeaders: fc.dictionary(
    fc.constantFrom(
      'idempotency-key',
      'x-switchyard-timestamp',
      'x-switchyard-signature',
      'x-forwarded-for',
    ),
    fc.string({ maxLength: 40 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
  ),
  body,
});

describe('HTTP input validation (fuzz)', () => {
  const a = makeApi({ maxBodyBytes: 64 * 1024 });
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);
  process.on('unhandledRejection', onRejection);
  afterAll(async () => {
    process.off('unhandledRejection', onRejection);
    await a.yard.close();
  });

  it('never crashes: 10,000 random requests each get a JSON success or a JSON error with a code', async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const canHaveBody = r.method !== 'GET' && r.method !== 'HEAD';
        const headers = new Headers();
        if (r.auth) headers.set('authorization', r.auth);
        if (r.contentType) headers.set('content-type', r.contentType);
        for (const [k, v] of Object.entries(r.extraHeaders)) headers.set(k, v);
        const query = new URLSearchParams(r.query).toString();
        const path = ROUTES[r.route]!(r.segment) + (query ? `?${query}` : '');
        const req = new Request(`http://localhost${path}`, {
          method: r.method,
          headers,
          ...(canHaveBody && r.body !== undefined ? { body: r.body } : {}),
        });
        const res = await a.handler(req);
        expect(res).toBeInstanceOf(Response);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        expect(KNOWN_STATUSES.has(res.status), `status ${res.status} for ${r.method} ${path}`).toBe(
          true,
        );
        expect(res.headers.get('content-type')).toMatch(/^application\/json/);
        // HEAD: the status and headers of GET, never a body.
        if (r.method === 'HEAD') {
          expect(await res.text()).toBe('');
          return;
        }
        const parsed = JSON.parse(await res.text()) as {
          error?: { code?: unknown; message?: unknown };
        };
        if (res.status >= 400) {
          expect(typeof parsed.error?.code).toBe('string');
          expect(typeof parsed.error?.message).toBe('string');
        } else expect(parsed.error).toBeUndefined();
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      }),
      { numRuns: 10_000 },
    );
    await new Promise((r) => setTimeout(r, 50));
    expect(rejections).toEqual([]);
    // The generator reaches the deep paths, not only 401/404.
    for (const s of [200, 202, 400, 401, 404, 405, 413, 415])
      expect(statuses.get(s) ?? 0, JSON.stringify([...statuses])).toBeGreaterThan(0);
  }, 180_000);
});
