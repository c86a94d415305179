import { createServer } from 'node:http';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { type Logger, memoryStore, SwitchyardError, silentLogger } from '@switchyard/core';
import { createHttpHandler, signRequest, type TransportFlag } from '@switchyard/core/http';
import { afterEach, describe, expect, it } from 'vitest';
import { bodyOf, makeApi, spyStore, TOKEN } from './http-helpers.js';

type Api = ReturnType<typeof makeApi>;
const open: Api[] = [];
function api(...args: Parameters<typeof makeApi>): Api {
  const a = makeApi(...args);
  open.push(a);
  return a;
}
afterEach(async () => {
  for (const a of open.splice(0)) await a.yard.close();
});

async function runToEnd(a: Api, jobId: string) {
  const controller = new AbortController();
  const working = a.yard.work({ signal: controller.signal, waitMs: 20, visibilityTimeoutMs: 500 });
  try {
    return await a.yard.waitFor(jobId, { pollIntervalMs: 20 });
  } finally {
    controller.abort();
    await working;
  }
}

function headersOf(res: Response): Record<string, string> {
  const headers: Record<string, string> = {};
  res.headers.forEach((value, name) => {
    headers[name] = value;
  });
  return headers;
}

async function expectError(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = await bodyOf(res);
  const error = body.error as { code: string; message: string; details?: unknown };
  expect(error.code).toBe(code);
  expect(typeof error.message).toBe('string');
  expect(JSON.stringify(body)).not.toMatch(/\n\s+at /); // no stack trace
  return error;
}

describe('POST /api/jobs/submit/{jobName}', () => {
  it('creates (202) then returns the same job on resubmit (200)', async () => {
    const a = api();
    const first = await a.call('POST', '/api/jobs/submit/squares', { body: '{"n":5}' });
    expect(first.status).toBe(202);
    const created = await bodyOf(first);
    expect(created).toMatchObject({ status: 'queued', transport: 'memory', created: true });
    expect(created.statusUrl).toBe(`/api/jobs/status/${created.jobId}`);
    expect(first.headers.get('location')).toBe(created.statusUrl);
    const again = await a.call('POST', '/api/jobs/submit/squares', { body: '{ "n": 5 }' });
    expect(again.status).toBe(200);
    expect(await bodyOf(again)).toMatchObject({ jobId: created.jobId, created: false });
    const view = await runToEnd(a, created.jobId as string);
    expect(view.status).toBe('succeeded');
    expect(view.result).toEqual({ squared: 5 });
  });

  it('accepts the envelope form { params, transport, idempotencyKey }', async () => {
    const a = api();
    const res = await a.call('POST', '/api/jobs/submit/squares', {
      body: JSON.stringify({ params: { n: 2 }, transport: 'servicebus', idempotencyKey: 'k-1' }),
    });
    expect(res.status).toBe(202);
    const body = await bodyOf(res);
    expect(body.transport).toBe('servicebus');
    // Same key, other params: the same job.
    const again = await a.call('POST', '/api/jobs/submit/squares', {
      body: JSON.stringify({ params: { n: 3 }, idempotencyKey: 'k-1' }),
    });
    expect(again.status).toBe(200);
    expect((await bodyOf(again)).jobId).toBe(body.jobId);
  });

  it('takes a priority in either form, shows it in the status, and 400s any other value', async () => {
    const a = api();
    const flat = await a.call('POST', '/api/jobs/submit/squares', {
      body: JSON.stringify({ n: 7, priority: 'high' }),
    });
    expect(flat.status).toBe(202);
    const { jobId } = await bodyOf(flat);
    const status = await a.call('GET', `/api/jobs/status/${jobId as string}`);
    expect(await bodyOf(status)).toMatchObject({ priority: 'high', params: { n: 7 } });
    const envelope = await a.call('POST', '/api/jobs/submit/squares', {
      body: JSON.stringify({ params: { n: 8 }, priority: 'low' }),
    });
    expect(envelope.status).toBe(202);
    const low = await bodyOf(envelope);
    expect((await a.yard.getJob(low.jobId as string))?.priority).toBe('low');
    for (const priority of ['urgent', 1, null]) {
      const res = await a.call('POST', '/api/jobs/submit/squares', {
        body: JSON.stringify({ n: 9, priority }),
      });
      const error = await expectError(res, 400, 'INVALID_INPUT');
      expect(JSON.stringify(error)).toContain('priority');
    }
  });

  it('maps use_service_bus true/false to the two paths (params given inline)', async () => {
    const a = api();
    const sb = await bodyOf(
      await a.call('POST', '/api/jobs/submit/squares', {
        body: '{"n":1,"use_service_bus":true}',
      }),
    );
    expect(sb.transport).toBe('servicebus');
    // Identity is name + params: the same workload on the other path is a 409 …
    const conflict = await expectError(
      await a.call('POST', '/api/jobs/submit/squares', { body: '{"n":1,"use_service_bus":false}' }),
      409,
      'JOB_EXISTS_ON_OTHER_PATH',
    );
    expect(conflict.details).toEqual({ jobId: sb.jobId, transport: 'servicebus' });
    // … unless it gets its own key.
    const other = await bodyOf(
      await a.call('POST', '/api/jobs/submit/squares', {
        body: '{"n":1,"use_service_bus":false,"idempotencyKey":"on-memory"}',
      }),
    );
    expect(other.transport).toBe('memory');
    expect(other.jobId).not.toBe(sb.jobId);
    const err = await expectError(
      await a.call('POST', '/api/jobs/submit/squares', { body: '{"n":1,"use_service_bus":"yes"}' }),
      400,
      'INVALID_INPUT',
    );
    expect(err.details).toEqual([{ path: 'use_service_bus', message: 'must be true or false' }]);
  });

  it("transport flags are the host's: any name, each value mapped or refused", async () => {
    const a = api({
      transportFlags: { fast: { whenTrue: 'servicebus' }, cheap: { whenTrue: 'memory' } },
    });
    const fast = await a.call('POST', '/api/jobs/submit/squares', { body: '{"n":2,"fast":true}' });
    expect(fast.status).toBe(202);
    expect((await bodyOf(fast)).transport).toBe('servicebus');
    // Allowed next to params, like every option key.
    const cheap = await a.call('POST', '/api/jobs/submit/squares', {
      body: '{"params":{"n":3},"cheap":true}',
    });
    expect((await bodyOf(cheap)).transport).toBe('memory');
    // A value the flag has no transport for, two flags that disagree, a non-boolean.
    await expectError(
      await a.call('POST', '/api/jobs/submit/squares', { body: '{"n":4,"fast":false}' }),
      400,
      'UNKNOWN_TRANSPORT',
    );
    const clash = await expectError(
      await a.call('POST', '/api/jobs/submit/squares', {
        body: '{"n":4,"fast":true,"cheap":true}',
      }),
      400,
      'INVALID_INPUT',
    );
    expect(clash.details).toEqual([{ path: 'cheap', message: 'conflicts with fast' }]);
    // `transport` wins over a flag.
    const named = await a.call('POST', '/api/jobs/submit/squares', {
      body: '{"n":5,"fast":true,"transport":"memory"}',
    });
    expect((await bodyOf(named)).transport).toBe('memory');
    // Without the flag configured, `use_service_bus` is a param like any other (squares ignores it).
    const plain = await a.call('POST', '/api/jobs/submit/squares', {
      body: '{"n":6,"use_service_bus":true}',
    });
    expect((await bodyOf(plain)).transport).toBe('memory');
  });

  it('refuses transport flags that are not identifiers or name no transport', () => {
    const { yard } = api();
    const bad: Record<string, TransportFlag>[] = [
      { transport: { whenTrue: 'memory' } },
      { 'bad name': { whenTrue: 'memory' } },
      { empty: {} },
      { wrong: { whenTrue: 7 as unknown as string } },
    ];
    for (const transportFlags of bad)
      expect(() =>
        createHttpHandler(yard, { auth: { none: true }, transportFlags, logger: silentLogger }),
      ).toThrow(expect.objectContaining({ code: 'CONFIG_ERROR' }));
  });

  it('400 naming the key for anything next to "params" that is not an option', async () => {
    const a = api();
    const err = await expectError(
      await a.call('POST', '/api/jobs/submit/squares', {
        body: '{"params":{"n":3},"idempotency_key":"k"}',
      }),
      400,
      'INVALID_INPUT',
    );
    expect(err.message).toContain('idempotency_key');
    expect((err.details as { path: string }[]).map((d) => d.path)).toEqual(['idempotency_key']);
    // Params mixed with an envelope are refused too, not half-read.
    await expectError(
      await a.call('POST', '/api/jobs/submit/squares', { body: '{"params":{"n":3},"n":4}' }),
      400,
      'INVALID_INPUT',
    );
    // The options themselves are fine.
    const ok = await a.call('POST', '/api/jobs/submit/squares', {
      body: '{"params":{"n":3},"idempotencyKey":"k","use_service_bus":false,"transport":"memory"}',
    });
    expect(ok.status).toBe(202);
  });

  it('400 naming the field for a U+0000 in a job id or an idempotency key', async () => {
    const a = api();
    const key = await expectError(
      await a.call('POST', '/api/jobs/submit/squares', {
        body: JSON.stringify({ params: { n: 1 }, idempotencyKey: 'a\u0000b' }),
      }),
      400,
      'INVALID_INPUT',
    );
    expect(key.details).toEqual([
      { path: 'idempotencyKey', message: 'must not contain the character U+0000' },
    ]);
    for (const [method, path] of [
      ['GET', '/api/jobs/status/a%00b'],
      ['GET', '/api/jobs/a%00b/tasks'],
      ['POST', '/api/jobs/a%00b/cancel'],
    ] as const) {
      const err = await expectError(await a.call(method, path), 400, 'INVALID_INPUT');
      expect(err.details, path).toEqual([
        { path: 'jobId', message: 'must not contain the character U+0000' },
      ]);
    }
  });

  it('takes the Idempotency-Key header and an empty body as {}', async () => {
    const a = api();
    const res = await a.call('POST', '/api/jobs/submit/squares', {
      body: '{"n":0}',
      headers: { 'idempotency-key': 'hdr-1' },
    });
    expect(res.status).toBe(202);
    // Empty body: params {} fails validation (n is required) with the field named.
    const err = await expectError(
      await a.call('POST', '/api/jobs/submit/squares', {}),
      400,
      'INVALID_INPUT',
    );
    expect(JSON.stringify(err.details)).toContain('n');
  });

  it('400 with each field error for invalid params', async () => {
    const a = api();
    const err = await expectError(
      await a.call('POST', '/api/jobs/submit/squares', { body: '{"n":-1,"label":42}' }),
      400,
      'INVALID_INPUT',
    );
    const paths = (err.details as { path: string }[]).map((d) => d.path).sort();
    expect(paths).toEqual(['params.label', 'params.n']);
  });

  it('404 for an unknown job, 400 for an unknown transport', async () => {
    const a = api();
    const err = await expectError(
      await a.call('POST', '/api/jobs/submit/nope', { body: '{}' }),
      404,
      'UNKNOWN_JOB',
    );
    expect(err.details).toEqual({ known: ['squares'] });
    await expectError(
      await a.call('POST', '/api/jobs/submit/squares', {
        body: '{"n":1,"transport":"carrier-pigeon"}',
      }),
      400,
      'UNKNOWN_TRANSPORT',
    );
  });

  it('400 malformed JSON, 400 non-object, 400 too deep, 400 bad UTF-8', async () => {
    const a = api();
    await expectError(
      await a.call('POST', '/api/jobs/submit/squares', { body: '{"n":' }),
      400,
      'MALFORMED_JSON',
    );
    await expectError(
      await a.call('POST', '/api/jobs/submit/squares', { body: '[1,2]' }),
      400,
      'INVALID_INPUT',
    );
    await expectError(
      await a.call('POST', '/api/jobs/submit/squares', { body: 'null' }),
      400,
      'INVALID_INPUT',
    );
    await expectError(
      await a.call('POST', '/api/jobs/submit/squares', {
        body: `{"n":1,"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
      }),
      400,
      'INVALID_INPUT',
    );
    const res = await a.handler(
      new Request('http://localhost/api/jobs/submit/squares', {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: new Uint8Array([0x7b, 0xff, 0x7d]),
      }),
    );
    await expectError(res, 400, 'MALFORMED_JSON');
  });

  it('413 over the size limit, even when Content-Length lies or is absent', async () => {
    const a = api({ maxBodyBytes: 1000 });
    await expectError(
      await a.call('POST', '/api/jobs/submit/squares', {
        body: `{"n":1,"x":"${'a'.repeat(2000)}"}`,
      }),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    // A streamed body with no Content-Length: the cap is enforced while reading.
    let pulled = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        if (pulled > 1000) controller.close();
        else controller.enqueue(new TextEncoder().encode(' '.repeat(100)));
      },
    });
    const res = await a.handler(
      new Request('http://localhost/api/jobs/submit/squares', {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: stream,
        duplex: 'half',
      } as RequestInit),
    );
    await expectError(res, 413, 'PAYLOAD_TOO_LARGE');
    expect(pulled).toBeLessThan(50); // stopped reading early
  });

  it('415 for a non-JSON content type; +json and charset are fine', async () => {
    const a = api();
    await expectError(
      await a.call('POST', '/api/jobs/submit/squares', {
        body: 'n=1',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    const res = await a.call('POST', '/api/jobs/submit/squares', {
      body: '{"n":1}',
      headers: { 'content-type': 'application/vnd.api+json; charset=utf-8' },
    });
    expect(res.status).toBe(202);
  });

  it('keeps a __proto__ key as plain data (no prototype pollution)', async () => {
    const a = api();
    const res = await a.call('POST', '/api/jobs/submit/squares', {
      body: '{"n":1,"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}',
    });
    expect(res.status).toBe(202); // unknown keys are stripped by the schema
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const env = await a.call('POST', '/api/jobs/submit/squares', {
      body: '{"params":{"n":2,"__proto__":{"polluted":true}},"transport":"memory"}',
    });
    expect(env.status).toBe(202);
    expect((await bodyOf(env)).transport).toBe('memory');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('GET /api/jobs/status/{jobId}', () => {
  it('reports status, stages, path and result; 404 for an unknown job', async () => {
    const a = api();
    const { jobId } = await bodyOf(
      await a.call('POST', '/api/jobs/submit/squares', { body: '{"n":3,"use_service_bus":true}' }),
    );
    await runToEnd(a, jobId as string);
    const res = await a.call('GET', `/api/jobs/status/${jobId}`);
    expect(res.status).toBe(200);
    const view = await bodyOf(res);
    expect(view).toMatchObject({
      id: jobId,
      name: 'squares',
      status: 'succeeded',
      transport: 'servicebus',
      result: { squared: 3 },
    });
    expect(view.stages).toMatchObject([{ name: 'square', total: 3, succeeded: 3, failed: 0 }]);
    expect(typeof view.durationMs).toBe('number');
    await expectError(await a.call('GET', '/api/jobs/status/missing'), 404, 'JOB_NOT_FOUND');
  });
});

describe('GET /api/jobs/{jobId}/tasks', () => {
  it('pages with cursor and limit, filters by stage (index or name) and status', async () => {
    const a = api();
    const { jobId } = await bodyOf(
      await a.call('POST', '/api/jobs/submit/squares', { body: '{"n":25}' }),
    );
    await runToEnd(a, jobId as string);
    const seen: number[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const q = new URLSearchParams({ stage: 'square', status: 'succeeded', limit: '10' });
      if (cursor) q.set('cursor', cursor);
      const res = await a.call('GET', `/api/jobs/${jobId}/tasks?${q}`);
      expect(res.status).toBe(200);
      const page = (await bodyOf(res)) as { tasks: { index: number }[]; nextCursor?: string };
      seen.push(...page.tasks.map((t) => t.index));
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual([...Array(25).keys()]);
    const failed = await bodyOf(
      await a.call('GET', `/api/jobs/${jobId}/tasks?stage=0&status=failed`),
    );
    expect(failed).toEqual({ tasks: [] });
  });

  it('400 naming each bad query parameter, 404 for an unknown job', async () => {
    const a = api();
    const { jobId } = await bodyOf(
      await a.call('POST', '/api/jobs/submit/squares', { body: '{"n":1}' }),
    );
    const err = await expectError(
      await a.call('GET', `/api/jobs/${jobId}/tasks?stage=9&status=weird&limit=0&cursor=`),
      400,
      'INVALID_INPUT',
    );
    expect((err.details as { path: string }[]).map((d) => d.path)).toEqual([
      'stage',
      'status',
      'limit',
      'cursor',
    ]);
    await expectError(await a.call('GET', '/api/jobs/nope/tasks'), 404, 'JOB_NOT_FOUND');
  });

  it('400 naming an unknown or repeated parameter, as GET /api/jobs does, never a wider page', async () => {
    const a = api();
    const { jobId } = await bodyOf(
      await a.call('POST', '/api/jobs/submit/squares', { body: '{"n":3}' }),
    );
    await runToEnd(a, jobId as string);
    const paths = (details: unknown) => (details as { path: string }[]).map((d) => d.path);
    const unknown = await expectError(
      await a.call('GET', `/api/jobs/${jobId}/tasks?zzz=1&state=failed`),
      400,
      'INVALID_INPUT',
    );
    expect(paths(unknown.details)).toEqual(['zzz', 'state']);
    expect(JSON.stringify(unknown.details)).toContain('stage, status, cursor, limit');
    // A snake_case spelling of a parameter is refused with the right name, as on GET /api/jobs.
    const snake = await expectError(
      await a.call('GET', '/api/jobs?created_after=2026-01-01'),
      400,
      'INVALID_INPUT',
    );
    expect(JSON.stringify(snake.details)).toContain('did you mean createdAfter?');
    // A repeated parameter is read as its values joined, as GET /api/jobs reads it: a single-valued
    // one is refused rather than silently taken from its first value.
    for (const query of ['limit=2&limit=abc', 'limit=2&limit=2', 'status=failed&status=succeeded'])
      expect(
        paths(
          (
            await expectError(
              await a.call('GET', `/api/jobs/${jobId}/tasks?${query}`),
              400,
              'INVALID_INPUT',
            )
          ).details,
        ),
        query,
      ).toEqual([query.slice(0, query.indexOf('='))]);
    const page = await bodyOf(await a.call('GET', `/api/jobs/${jobId}/tasks?limit=2`));
    expect(page.tasks).toHaveLength(2);
  });
});

describe('POST /api/jobs/{jobId}/cancel', () => {
  it('cancels a job once; 404 for an unknown job', async () => {
    const a = api();
    const { jobId } = await bodyOf(
      await a.call('POST', '/api/jobs/submit/squares', { body: '{"n":10}' }),
    );
    const res = await a.call('POST', `/api/jobs/${jobId}/cancel`);
    expect(res.status).toBe(200);
    expect(await bodyOf(res)).toEqual({ jobId, cancelled: true, status: 'cancelled' });
    expect(await bodyOf(await a.call('POST', `/api/jobs/${jobId}/cancel`))).toEqual({
      jobId,
      cancelled: false,
      status: 'cancelled',
    });
    await expectError(await a.call('POST', '/api/jobs/nope/cancel'), 404, 'JOB_NOT_FOUND');
  });

  it('reads its body under the rules of every POST: empty or {}, else 415 / 400 naming the field', async () => {
    const a = api();
    const { jobId } = await bodyOf(
      await a.call('POST', '/api/jobs/submit/squares', { body: '{"n":10}' }),
    );
    const path = `/api/jobs/${jobId}/cancel`;
    await expectError(
      await a.call('POST', path, { body: 'now', headers: { 'content-type': 'text/plain' } }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    await expectError(await a.call('POST', path, { body: '{"reason":' }), 400, 'MALFORMED_JSON');
    const unknown = await expectError(
      await a.call('POST', path, { body: '{"reason":"x"}' }),
      400,
      'INVALID_INPUT',
    );
    expect(unknown.details).toEqual([
      { path: 'reason', message: 'is not a field of this request; it takes none' },
    ]);
    expect((await a.yard.getJob(jobId as string))?.status).toBe('queued');
    expect(await bodyOf(await a.call('POST', path, { body: '{}' }))).toMatchObject({
      cancelled: true,
    });
  });
});

describe('GET /api/metrics/comparison', () => {
  it('shows both paths', async () => {
    const a = api();
    for (const useSb of [true, false]) {
      const { jobId } = await bodyOf(
        await a.call('POST', '/api/jobs/submit/squares', {
          body: JSON.stringify({
            params: { n: 4 },
            use_service_bus: useSb,
            idempotencyKey: `${useSb}`,
          }),
        }),
      );
      await runToEnd(a, jobId as string);
    }
    const res = await a.call('GET', '/api/metrics/comparison');
    expect(res.status).toBe(200);
    const { transports: paths } = (await bodyOf(res)) as {
      transports: { transport: string; jobs: { succeeded: number }; tasks: { total: number } }[];
    };
    const by = Object.fromEntries(paths.map((p) => [p.transport, p]));
    expect(by.servicebus).toMatchObject({ jobs: { succeeded: 1 }, tasks: { total: 4 } });
    expect(by.memory).toMatchObject({ jobs: { succeeded: 1 }, tasks: { total: 4 } });
  });
});

describe('probes', () => {
  it('/healthz and /readyz answer without auth; /readyz 503 when a backend fails', async () => {
    const inner = memoryStore();
    let broken = false;
    const store = Object.assign(Object.create(inner) as typeof inner, {
      ping: async () => {
        if (broken) throw new Error('db at 10.0.0.5 refused');
      },
    });
    const a = api({}, store);
    expect(await bodyOf(await a.call('GET', '/healthz', { token: null }))).toEqual({ ok: true });
    const ready = await a.call('GET', '/readyz', { token: null });
    expect(ready.status).toBe(200);
    expect(await bodyOf(ready)).toMatchObject({ ok: true, checks: { store: { ok: true } } });
    broken = true;
    const anon = await a.call('GET', '/readyz', { token: null });
    expect(anon.status).toBe(503);
    expect(await anon.text()).not.toContain('10.0.0.5');
    const authed = await bodyOf(await a.call('GET', '/readyz'));
    expect(authed).toMatchObject({
      ok: false,
      checks: { store: { ok: false, error: 'db at 10.0.0.5 refused' } },
    });
  });

  it('with publicProbes: false the probes need auth too', async () => {
    const a = api({ publicProbes: false });
    await expectError(await a.call('GET', '/healthz', { token: null }), 401, 'UNAUTHORIZED');
  });
});

describe('routing', () => {
  it('404 for unknown routes, 405 with Allow for a wrong method', async () => {
    const a = api();
    for (const path of [
      '/',
      '/api',
      '/api/jobs/',
      '/api/jobs/list',
      '/api/jobs//tasks',
      '/nope',
      '/api/jobs/x/y',
      '/api/jobs/%E0%A4%A/tasks',
    ])
      await expectError(await a.call('GET', path), 404, 'NOT_FOUND');
    const res = await a.call('GET', '/api/jobs/submit/squares');
    await expectError(res, 405, 'METHOD_NOT_ALLOWED');
    expect(res.headers.get('allow')).toBe('POST');
    await expectError(await a.call('DELETE', '/api/jobs/status/x'), 405, 'METHOD_NOT_ALLOWED');
    await expectError(await a.call('PUT', '/healthz'), 405, 'METHOD_NOT_ALLOWED');
  });

  it('HEAD wherever GET is allowed: the same status and headers, no body; Allow lists both', async () => {
    const a = api();
    const { jobId } = await bodyOf(
      await a.call('POST', '/api/jobs/submit/squares', { body: '{"n":2}' }),
    );
    for (const path of [
      '/healthz',
      '/readyz',
      '/api/jobs',
      '/api/jobs?status=queued&limit=1',
      `/api/jobs/status/${jobId}`,
      `/api/jobs/${jobId}/tasks`,
      '/api/metrics/comparison',
      '/api/schedules',
      '/api/jobs/status/missing',
      '/api/jobs?zzz=1',
      '/nope',
    ]) {
      const get = await a.call('GET', path);
      const head = await a.call('HEAD', path);
      expect(head.status, path).toBe(get.status);
      expect(headersOf(head), path).toEqual(headersOf(get));
      expect(await head.text(), path).toBe('');
    }
    // Anonymous probes, and the 401 of an anonymous HEAD elsewhere.
    expect((await a.call('HEAD', '/healthz', { token: null })).status).toBe(200);
    const anon = await a.call('HEAD', '/api/jobs', { token: null });
    expect(anon.status).toBe(401);
    expect(anon.headers.get('www-authenticate')).toBe('Bearer');
    expect(await anon.text()).toBe('');
    // Not on a POST route; a 405 on a GET route allows both.
    const post = await a.call('HEAD', '/api/jobs/submit/squares');
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('POST');
    expect(await post.text()).toBe('');
    for (const path of ['/healthz', '/readyz', '/api/jobs', '/api/jobs/x/tasks']) {
      const res = await a.call('PUT', path);
      await expectError(res, 405, 'METHOD_NOT_ALLOWED');
      expect(res.headers.get('allow'), path).toBe('GET, HEAD');
    }
  });

  it('honours basePath', async () => {
    const a = api({ basePath: '/yard/' });
    expect((await a.call('GET', '/yard/healthz')).status).toBe(200);
    await expectError(await a.call('GET', '/healthz'), 404, 'NOT_FOUND');
    const { statusUrl } = await bodyOf(
      await a.call('POST', '/yard/api/jobs/submit/squares', { body: '{"n":0}' }),
    );
    expect(statusUrl).toMatch(/^\/yard\/api\/jobs\/status\//);
  });

  it('503 UNAVAILABLE without details on a backend error', async () => {
    const inner = memoryStore();
    const store = Object.assign(Object.create(inner) as typeof inner, {
      metrics: async () => {
        throw new SwitchyardError('BACKEND_ERROR', 'pg at 10.1.2.3: connection refused');
      },
    });
    const a = api({}, store);
    const err = await expectError(
      await a.call('GET', '/api/metrics/comparison'),
      503,
      'UNAVAILABLE',
    );
    expect(err.message).not.toContain('10.1.2.3');
  });

  it('500 INTERNAL without details for an unexpected error', async () => {
    const inner = memoryStore();
    const store = Object.assign(Object.create(inner) as typeof inner, {
      getJob: async () => {
        throw Object.assign(new Error('connection to 10.1.2.3 lost'), { code: 'ECONNRESET' });
      },
    });
    const a = api({}, store);
    const err = await expectError(await a.call('GET', '/api/jobs/status/x'), 500, 'INTERNAL');
    expect(err.message).not.toContain('10.1.2.3');
  });
});

describe('auth', () => {
  const routes: [string, string, string?][] = [
    ['POST', '/api/jobs/submit/squares', '{"n":1}'],
    ['GET', '/api/jobs/status/x'],
    ['GET', '/api/metrics/comparison'],
    ['GET', '/api/jobs/x/tasks'],
    ['POST', '/api/jobs/x/cancel'],
    ['GET', '/nope'],
    ['DELETE', '/api/jobs/status/x'],
  ];

  it('401 for missing or wrong bearer tokens, and the store is never touched', async () => {
    const { store, calls } = spyStore();
    const a = api({}, store);
    for (const [method, path, body] of routes) {
      for (const token of [null, 'wrong-token-0123456789abcdef', `${TOKEN}x`, '']) {
        const res = await a.call(method, path, { token, ...(body ? { body } : {}) });
        await expectError(res, 401, 'UNAUTHORIZED');
        expect(res.headers.get('www-authenticate')).toBe('Bearer');
      }
    }
    expect(calls).toEqual([]);
    // A second configured token works.
    const b = api({ auth: { bearerTokens: ['other-token-0123456789', TOKEN] } });
    expect((await b.call('GET', '/api/metrics/comparison')).status).toBe(200);
  });

  it('HMAC: signed requests pass; bad, stale or replayed-to-another-path signatures get 401', async () => {
    const key = 'hmac-key-0123456789abcdef';
    const { store, calls } = spyStore();
    const a = api({ auth: { hmacKey: key, maxSkewMs: 60_000 } }, store);
    const send = (
      method: string,
      path: string,
      body: string | undefined,
      headers: Record<string, string>,
    ) =>
      a.handler(
        new Request(`http://localhost${path}`, {
          method,
          headers: { ...headers, 'content-type': 'application/json' },
          ...(body === undefined ? {} : { body }),
        }),
      );
    const body = '{"n":2}';
    const path = '/api/jobs/submit/squares';
    const bad = [
      {},
      signRequest({ key: 'wrong-key-0123456789abcdef', method: 'POST', path, body }),
      signRequest({ key, method: 'POST', path, body, timestamp: Date.now() - 120_000 }),
      signRequest({ key, method: 'POST', path: '/api/jobs/submit/other', body }),
      signRequest({ key, method: 'POST', path, body: '{"n":3}' }),
      { 'x-switchyard-timestamp': 'soon', 'x-switchyard-signature': 'v1=00' },
    ];
    for (const headers of bad)
      await expectError(await send('POST', path, body, headers), 401, 'UNAUTHORIZED');
    expect(calls).toEqual([]);
    const ok = await send('POST', path, body, signRequest({ key, method: 'POST', path, body }));
    expect(ok.status).toBe(202);
    const q = '/api/metrics/comparison';
    expect(
      (await send('GET', q, undefined, signRequest({ key, method: 'GET', path: q }))).status,
    ).toBe(200);
  });

  it('HMAC: a request without signature headers is 401 before its body is read', async () => {
    const key = 'hmac-key-0123456789abcdef';
    const { store, calls } = spyStore();
    const a = api({ auth: { hmacKey: key, maxSkewMs: 60_000 }, maxBodyBytes: 1000 }, store);
    let pulled = 0;
    const send = (
      path: string,
      body: Uint8Array | string,
      headers: Record<string, string> = {},
    ) => {
      const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
      const stream = new ReadableStream<Uint8Array>(
        {
          pull(controller) {
            pulled++;
            controller.enqueue(bytes);
            controller.close();
          },
        },
        { highWaterMark: 0 }, // pulled only when read
      );
      return a.handler(
        new Request(`http://localhost${path}`, {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/json' },
          body: stream,
          duplex: 'half',
        } as RequestInit),
      );
    };
    const path = '/api/jobs/submit/squares';
    const stale = signRequest({ key, method: 'POST', path, timestamp: Date.now() - 120_000 });
    for (const headers of [{}, stale, { 'x-switchyard-timestamp': 'soon' }]) {
      await expectError(
        await send(path, new Uint8Array([0x7b, 0xff, 0x7d]), headers),
        401,
        'UNAUTHORIZED',
      );
      await expectError(
        await send(path, `{"x":"${'a'.repeat(5000)}"}`, headers),
        401,
        'UNAUTHORIZED',
      );
      await expectError(await send('/api/jobs/x/cancel', '{', headers), 401, 'UNAUTHORIZED');
    }
    expect(pulled).toBe(0);
    expect(calls).toEqual([]);
    // A signed request is verified against its body, which it must send whole.
    const body = '{"n":2}';
    const signed = signRequest({ key, method: 'POST', path, body });
    await expectError(await send(path, '{"n":3}', signed), 401, 'UNAUTHORIZED');
    expect((await send(path, body, signed)).status).toBe(202);
    const big = `{"n":2,"x":"${'a'.repeat(5000)}"}`;
    const tooLarge = signRequest({ key, method: 'POST', path, body: big });
    await expectError(await send(path, big, tooLarge), 413, 'PAYLOAD_TOO_LARGE');
  });

  it('refuses to build without auth or with weak secrets', () => {
    const { yard } = api();
    const bad: unknown[] = [
      undefined,
      {},
      { none: false },
      { bearerTokens: [] },
      { bearerTokens: ['short'] },
      { hmacKey: 'short' },
    ];
    for (const auth of bad)
      expect(() =>
        createHttpHandler(yard, { auth: auth as never, logger: silentLogger }),
      ).toThrowError(expect.objectContaining({ code: 'CONFIG_ERROR' }));
  });

  it('{ none: true } opts out explicitly', async () => {
    const a = api({ auth: { none: true } });
    expect((await a.call('GET', '/api/metrics/comparison', { token: null })).status).toBe(200);
  });
});

describe('a client that leaves mid-body', () => {
  it('is no error of the server: logged at debug, nothing acted on', async () => {
    const logged: { level: string; message: string }[] = [];
    const record =
      (level: string) =>
      (message: string): void => {
        logged.push({ level, message });
      };
    const logger: Logger = {
      debug: record('debug'),
      info: record('info'),
      warn: record('warn'),
      error: record('error'),
    };
    const { store, calls } = spyStore();
    const a = api({ logger }, store);
    // node:http in front, as in examples/container: the body stays a stream.
    const answered: Promise<Response>[] = [];
    const server = createServer((req, res) => {
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers))
        if (typeof value === 'string') headers.set(name, value);
      answered.push(
        a.handler(
          new Request(`http://localhost${req.url}`, {
            method: req.method,
            headers,
            body: Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>,
            duplex: 'half',
          } as RequestInit),
        ),
      );
      res.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as { port: number };
      for (const path of ['/api/jobs/submit/squares', '/api/jobs/purge']) {
        const socket = connect(port, '127.0.0.1');
        await new Promise<void>((resolve) => socket.once('connect', resolve));
        socket.write(
          `POST ${path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${TOKEN}\r\n` +
            'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"n":',
        );
        await new Promise((r) => setTimeout(r, 50));
        socket.destroy();
      }
      await expect.poll(() => answered.length).toBe(2);
      for (const res of await Promise.all(answered)) await expectError(res, 400, 'REQUEST_ABORTED');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect(logged.filter((l) => l.level !== 'debug')).toEqual([]);
    expect(logged.map((l) => l.message)).toContain('HTTP request aborted by the client');
    expect(calls).toEqual([]);
  });
});
