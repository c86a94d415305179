import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  cachedSecret,
  firstOf,
  isSecretRef,
  redactSecrets,
  toCachedSecret,
  withSecretRotation,
} from '../src/driver.js';
import {
  envSecrets,
  isSwitchyardError,
  type SecretSource,
  SecretValue,
  SwitchyardError,
} from '../src/index.js';

/** A source backed by a map, counting lookups; `gate` lets a test hold lookups open. */
function mapSource(values: Record<string, string>, name = 'map') {
  let calls = 0;
  let gate: Promise<void> | undefined;
  const source: SecretSource = {
    name,
    async getSecret(key) {
      calls++;
      if (gate) await gate;
      return values[key];
    },
  };
  return {
    source,
    values,
    calls: () => calls,
    hold() {
      let release!: () => void;
      gate = new Promise((r) => {
        release = r;
      });
      return () => {
        gate = undefined;
        release();
      };
    },
  };
}

async function caught(promise: Promise<unknown>): Promise<SwitchyardError> {
  try {
    await promise;
  } catch (err) {
    if (isSwitchyardError(err)) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

describe('envSecrets', () => {
  it('maps names to upper-case variables and treats empty as missing', async () => {
    const env = envSecrets({ env: { SERVICEBUS_CONNECTION: 'Endpoint=sb://x', EMPTY: '' } });
    expect(env.name).toBe('env');
    expect(await env.getSecret('servicebus-connection')).toBe('Endpoint=sb://x');
    expect(await env.getSecret('empty')).toBeUndefined();
    expect(await env.getSecret('absent')).toBeUndefined();
  });

  it('accepts a custom mapping', async () => {
    const env = envSecrets({ env: { APP_DB: 'postgres://x' }, toVariable: (n) => `APP_${n}` });
    expect(await env.getSecret('DB')).toBe('postgres://x');
  });

  it('reads process.env by default', async () => {
    process.env.SWITCHYARD_TEST_SECRET_X = 'from-process';
    try {
      expect(await envSecrets().getSecret('switchyard-test-secret-x')).toBe('from-process');
    } finally {
      delete process.env.SWITCHYARD_TEST_SECRET_X;
    }
  });
});

describe('firstOf', () => {
  it('returns the first value found and names its sources', async () => {
    const a = mapSource({ one: 'a1' }, 'a');
    const b = mapSource({ one: 'b1', two: 'b2' }, 'b');
    const both = firstOf(a.source, b.source);
    expect(both.name).toBe('firstOf(a, b)');
    expect(await both.getSecret('one')).toBe('a1');
    expect(await both.getSecret('two')).toBe('b2');
    expect(await both.getSecret('three')).toBeUndefined();
  });

  it('stops at a source that throws rather than falling back silently', async () => {
    const broken: SecretSource = {
      name: 'broken',
      getSecret: () => Promise.reject(new Error('forbidden')),
    };
    const b = mapSource({ one: 'b1' });
    await expect(firstOf(broken, b.source).getSecret('one')).rejects.toThrow('forbidden');
    expect(b.calls()).toBe(0);
  });
});

describe('isSecretRef', () => {
  it('tells references from values', () => {
    expect(isSecretRef({ secret: 'x' })).toBe(true);
    expect(isSecretRef({ secret: 'x', source: envSecrets() })).toBe(true);
    expect(isSecretRef('Endpoint=sb://x')).toBe(false);
    expect(isSecretRef({ secret: '' })).toBe(false);
    expect(isSecretRef({ secret: 'x', source: 'env' })).toBe(false);
    expect(isSecretRef(null)).toBe(false);
  });
});

describe('SecretValue', () => {
  it('never prints its value', () => {
    const v = new SecretValue('hunter2-very-secret');
    const holder = { v, nested: { v } };
    expect(v.reveal()).toBe('hunter2-very-secret');
    expect(String(v)).toBe('[secret]');
    expect(`${v}`).toBe('[secret]');
    expect(JSON.stringify(holder)).not.toContain('hunter2');
    expect(inspect(holder, { showHidden: true, depth: 10 })).not.toContain('hunter2');
    expect(Object.keys(v)).toEqual([]);
  });
});

describe('cachedSecret', () => {
  it('resolves once and shares concurrent lookups', async () => {
    const m = mapSource({ db: 'postgres://u:p@h/db' });
    const secret = cachedSecret({ secret: 'db', source: m.source });
    const release = m.hold();
    const reads = Array.from({ length: 20 }, () => secret.get());
    release();
    expect(new Set(await Promise.all(reads))).toEqual(new Set(['postgres://u:p@h/db']));
    await secret.get();
    expect(m.calls()).toBe(1);
    expect(secret.name).toBe('db');
    expect(inspect(secret, { depth: 10 })).not.toContain('u:p@');
  });

  it('looks up again after the TTL', async () => {
    let t = 1_000;
    const m = mapSource({ key: 'v1-secret' });
    const secret = cachedSecret({ secret: 'key', source: m.source }, { ttlMs: 100, now: () => t });
    expect(await secret.get()).toBe('v1-secret');
    t += 99;
    await secret.get();
    expect(m.calls()).toBe(1);
    m.values.key = 'v2-secret';
    t += 1;
    expect(await secret.get()).toBe('v2-secret');
    expect(m.calls()).toBe(2);
  });

  it('refresh() forces a lookup; concurrent refreshes share it', async () => {
    const m = mapSource({ key: 'old-value' });
    const secret = cachedSecret({ secret: 'key', source: m.source });
    await secret.get();
    m.values.key = 'new-value';
    const release = m.hold();
    const both = Promise.all([secret.refresh(), secret.refresh()]);
    release();
    expect(await both).toEqual(['new-value', 'new-value']);
    expect(m.calls()).toBe(2);
    expect(await secret.get()).toBe('new-value');
  });

  it('keeps a refreshed value when an older lookup finishes later', async () => {
    let release!: (v: string) => void;
    let calls = 0;
    const source: SecretSource = {
      name: 'slow',
      getSecret: () => {
        calls++;
        if (calls === 1) return new Promise((r) => (release = r));
        return Promise.resolve('fresh-value');
      },
    };
    const secret = cachedSecret({ secret: 'key', source });
    const slow = secret.get();
    expect(await secret.refresh()).toBe('fresh-value');
    release('stale-value');
    expect(await slow).toBe('stale-value');
    expect(await secret.get()).toBe('fresh-value');
  });

  it('uses the default source, then env', async () => {
    const m = mapSource({ key: 'from-default' });
    expect(await cachedSecret({ secret: 'key' }, { defaultSource: m.source }).get()).toBe(
      'from-default',
    );
    process.env.SWITCHYARD_TEST_SECRET_Y = 'from-env';
    try {
      expect(await cachedSecret({ secret: 'switchyard-test-secret-y' }).get()).toBe('from-env');
    } finally {
      delete process.env.SWITCHYARD_TEST_SECRET_Y;
    }
  });

  it('reports a missing secret by name and source, and does not cache the failure', async () => {
    const m = mapSource({}, 'keyvault(https://v.vault.azure.net)');
    const secret = cachedSecret({ secret: 'db-url', source: m.source });
    const err = await caught(secret.get());
    expect(err.code).toBe('SECRET_NOT_FOUND');
    expect(err.message).toContain('"db-url"');
    expect(err.message).toContain('keyvault(https://v.vault.azure.net)');
    m.values['db-url'] = 'now-there';
    expect(await secret.get()).toBe('now-there');
  });

  it('wraps unexpected source errors as BACKEND_ERROR with the message redacted', async () => {
    const source: SecretSource = {
      name: 'flaky',
      getSecret: () => Promise.reject(new Error('boom Password=abc123xyz;')),
    };
    const err = await caught(cachedSecret({ secret: 'k', source }).get());
    expect(err.code).toBe('BACKEND_ERROR');
    expect(err.message).not.toContain('abc123xyz');
    expect(err.cause).toBeInstanceOf(Error);
  });

  it('passes Switchyard errors from the source through', async () => {
    const source: SecretSource = {
      name: 's',
      getSecret: () => Promise.reject(new SwitchyardError('AUTH_FAILED', 'forbidden')),
    };
    expect((await caught(cachedSecret({ secret: 'k', source }).get())).code).toBe('AUTH_FAILED');
  });

  it('lets one caller abort without failing the shared lookup', async () => {
    const m = mapSource({ key: 'value-123' });
    const secret = cachedSecret({ secret: 'key', source: m.source });
    const release = m.hold();
    const ac = new AbortController();
    const aborted = secret.get({ abortSignal: ac.signal });
    const other = secret.get();
    ac.abort();
    expect((await caught(aborted)).code).toBe('ABORTED');
    release();
    expect(await other).toBe('value-123');
  });
});

describe('withSecretRotation', () => {
  const authError = (err: unknown) => err instanceof Error && err.message === 'unauthorized';

  it('refreshes once after an auth failure and succeeds with the new value', async () => {
    const m = mapSource({ key: 'old-key-value' });
    const secret = cachedSecret({ secret: 'key', source: m.source });
    await secret.get();
    m.values.key = 'new-key-value';
    const seen: string[] = [];
    const result = await withSecretRotation(
      secret,
      async (value) => {
        seen.push(value);
        if (value !== 'new-key-value') throw new Error('unauthorized');
        return 'ok';
      },
      authError,
    );
    expect(result).toBe('ok');
    expect(seen).toEqual(['old-key-value', 'new-key-value']);
    expect(m.calls()).toBe(2);
  });

  it('throws AUTH_FAILED naming the secret, not its value, when the retry fails too', async () => {
    const m = mapSource({ key: 'still-wrong-value' });
    const secret = cachedSecret({ secret: 'key', source: m.source });
    const cause = new Error('unauthorized');
    const err = await caught(
      withSecretRotation(
        secret,
        () => Promise.reject(cause),
        () => true,
      ),
    );
    expect(err.code).toBe('AUTH_FAILED');
    expect(err.message).toContain('"key"');
    expect(err.message).not.toContain('still-wrong-value');
    expect(err.cause).toBe(cause);
    expect(m.calls()).toBe(2);
  });

  it('passes other errors through without refreshing', async () => {
    const m = mapSource({ key: 'v-value' });
    const secret = cachedSecret({ secret: 'key', source: m.source });
    await expect(
      withSecretRotation(secret, () => Promise.reject(new Error('disk full')), authError),
    ).rejects.toThrow('disk full');
    expect(m.calls()).toBe(1);
  });
});

describe('redactSecrets', () => {
  it('removes given values in raw, URL-encoded and JSON-escaped forms', () => {
    const value = 'p@ss w/rd"x';
    const text = `a ${value} b ${encodeURIComponent(value)} c ${JSON.stringify({ value })}`;
    const out = redactSecrets(text, [value]);
    expect(out).not.toContain('p@ss');
    expect(out).not.toContain('p%40ss');
    expect(out).toContain('a *** b *** c');
  });

  it('masks passwords in connection strings and URLs', () => {
    const cases: [string, string][] = [
      [
        'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=abc+/=;EntityPath=q',
        'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=***;EntityPath=q',
      ],
      [
        'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Zm9vYmFy==;EndpointSuffix=core.windows.net',
        'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=***;EndpointSuffix=core.windows.net',
      ],
      ['postgres://user:s3cret@db:5432/app', 'postgres://user:***@db:5432/app'],
      [
        'https://a.queue.core.windows.net/q?sv=2020&sig=abc%2Fdef&se=1',
        'https://a.queue.core.windows.net/q?sv=2020&sig=***&se=1',
      ],
      ['Authorization: Bearer eyJ0eXAi.abc.def', 'Authorization: Bearer ***'],
      [
        'Endpoint=sb://x/;SharedAccessSignature=SharedAccessSignature sr=x&sig=y&se=1;EntityPath=q',
        'Endpoint=sb://x/;SharedAccessSignature=***;EntityPath=q',
      ],
    ];
    for (const [input, expected] of cases) expect(redactSecrets(input, [])).toBe(expected);
  });

  it('by default redacts values resolved through cachedSecret', async () => {
    const m = mapSource({ key: 'remembered-secret-value' });
    await cachedSecret({ secret: 'key', source: m.source }).get();
    expect(redactSecrets('x remembered-secret-value y')).toBe('x *** y');
  });
});

describe('toCachedSecret', () => {
  it('wraps an inline value and resolves a reference', async () => {
    const inline = toCachedSecret('inline-secret-value', { label: 'connectionString' });
    expect(inline.name).toBe('connectionString');
    expect(await inline.get()).toBe('inline-secret-value');
    expect(await inline.refresh()).toBe('inline-secret-value');
    expect(redactSecrets('x inline-secret-value')).toBe('x ***');
    const m = mapSource({ key: 'referenced-value' });
    const ref = toCachedSecret({ secret: 'key' }, { defaultSource: m.source });
    expect(ref.name).toBe('key');
    expect(await ref.get()).toBe('referenced-value');
  });
});
