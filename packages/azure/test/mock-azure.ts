import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';

export const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
export const CLIENT_ID = '00000000-1111-2222-3333-444444444444';
export const CLIENT_SECRET = 'fake-client-secret-Q7v~9z';
export const VAULT_URL = 'https://sy-test-vault.vault.azure.net';
const LOGIN = 'https://login.microsoftonline.com';

/**
 * A fake Entra ID + Key Vault: the real SDKs talk HTTPS to these handlers.
 * Key Vault behaves like the service: an unauthenticated request gets a 401 challenge naming the
 * tenant and resource; a request with a token this fake issued gets the secret.
 */
export function fakeAzure() {
  const secrets = new Map<string, string>();
  const counts = { token: 0, vaultGets: 0, challenges: 0, discovery: 0 };
  let issued = 0;
  const validTokens = new Set<string>();
  /** Responses to serve (in order) before normal behaviour, for authenticated secret GETs. */
  const queued: Array<() => Response> = [];
  let deny: 401 | 403 | undefined;

  const openIdConfig = (tenant: string) => ({
    token_endpoint: `${LOGIN}/${tenant}/oauth2/v2.0/token`,
    authorization_endpoint: `${LOGIN}/${tenant}/oauth2/v2.0/authorize`,
    end_session_endpoint: `${LOGIN}/${tenant}/oauth2/v2.0/logout`,
    issuer: `${LOGIN}/${tenant}/v2.0`,
    jwks_uri: `${LOGIN}/${tenant}/discovery/v2.0/keys`,
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    token_endpoint_auth_methods_supported: [
      'client_secret_post',
      'private_key_jwt',
      'client_secret_basic',
    ],
  });

  const handlers = [
    http.get(`${LOGIN}/common/discovery/instance`, () => {
      counts.discovery++;
      return HttpResponse.json({
        tenant_discovery_endpoint: `${LOGIN}/${TENANT}/v2.0/.well-known/openid-configuration`,
        'api-version': '1.1',
        metadata: [
          {
            preferred_network: 'login.microsoftonline.com',
            preferred_cache: 'login.windows.net',
            aliases: [
              'login.microsoftonline.com',
              'login.windows.net',
              'login.microsoft.com',
              'sts.windows.net',
            ],
          },
        ],
      });
    }),
    http.get(`${LOGIN}/:tenant/v2.0/.well-known/openid-configuration`, ({ params }) => {
      counts.discovery++;
      return HttpResponse.json(openIdConfig(String(params.tenant)));
    }),
    http.post(`${LOGIN}/:tenant/oauth2/v2.0/token`, async ({ request, params }) => {
      const form = new URLSearchParams(await request.text());
      if (
        params.tenant !== TENANT ||
        form.get('client_id') !== CLIENT_ID ||
        form.get('client_secret') !== CLIENT_SECRET
      ) {
        return HttpResponse.json(
          { error: 'invalid_client', error_description: 'bad client' },
          { status: 401 },
        );
      }
      counts.token++;
      const token = `fake-access-token-${++issued}`;
      validTokens.add(token);
      return HttpResponse.json({
        token_type: 'Bearer',
        expires_in: 3599,
        ext_expires_in: 3599,
        access_token: token,
      });
    }),
    http.get(`${VAULT_URL}/secrets/:name/:version?`, ({ request, params }) => {
      const auth = request.headers.get('authorization');
      if (!auth) {
        counts.challenges++;
        return new HttpResponse(null, {
          status: 401,
          headers: {
            'WWW-Authenticate': `Bearer authorization="${LOGIN}/${TENANT}", resource="https://vault.azure.net"`,
          },
        });
      }
      counts.vaultGets++;
      if (!validTokens.has(auth.replace(/^Bearer /, ''))) {
        return HttpResponse.json(
          { error: { code: 'Unauthorized', message: 'bad token' } },
          { status: 401 },
        );
      }
      const next = queued.shift();
      if (next) return next();
      if (deny) {
        return HttpResponse.json(
          {
            error: { code: 'Forbidden', message: 'The user does not have secrets get permission' },
          },
          { status: deny },
        );
      }
      const name = String(params.name);
      const value = secrets.get(name);
      if (value === undefined) {
        return HttpResponse.json(
          {
            error: {
              code: 'SecretNotFound',
              message: `A secret with (name/id) ${name} was not found in this key vault.`,
            },
          },
          { status: 404 },
        );
      }
      return HttpResponse.json({
        value,
        id: `${VAULT_URL}/secrets/${name}/0123456789abcdef0123456789abcdef`,
        attributes: {
          enabled: true,
          created: 1_700_000_000,
          updated: 1_700_000_000,
          recoveryLevel: 'Recoverable+Purgeable',
        },
        tags: {},
      });
    }),
  ];

  return {
    server: setupServer(...handlers),
    secrets,
    counts,
    /** Serve a 429 (Retry-After: 0) for the next `n` authenticated secret reads. */
    throttle(n: number) {
      for (let i = 0; i < n; i++) {
        queued.push(() =>
          HttpResponse.json(
            { error: { code: 'Throttled', message: 'Too many requests' } },
            { status: 429, headers: { 'Retry-After': '0' } },
          ),
        );
      }
    },
    deny(status: 401 | 403 | undefined) {
      deny = status;
    },
    reset() {
      secrets.clear();
      queued.length = 0;
      deny = undefined;
      for (const key of Object.keys(counts) as Array<keyof typeof counts>) counts[key] = 0;
    },
  };
}
