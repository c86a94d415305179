/**
 * Secret values resolved in this process (by `cachedSecret`), so loggers and error formatters
 * that do not know which values are secret can still redact them. Bounded: a process that
 * rotates secrets for months must not grow this set forever.
 */
const known = new Set<string>();
const MAX_KNOWN = 256;
/** Shorter values would redact ordinary words; connection strings and keys are far longer. */
const MIN_KNOWN_LENGTH = 6;

/** Remembers a secret value so {@link redactSecrets} without explicit values redacts it. */
export function rememberSecretValue(value: string): void {
  if (value.length < MIN_KNOWN_LENGTH) return;
  known.delete(value);
  known.add(value);
  if (known.size > MAX_KNOWN) {
    const oldest = known.values().next().value;
    if (oldest !== undefined) known.delete(oldest);
  }
}

/** The values {@link redactSecrets} redacts by default (most recently resolved last). */
export function knownSecretValues(): readonly string[] {
  return [...known];
}

const MASK = '***';

/**
 * `key=value` pairs whose value is a password in connection strings and query strings
 * (Service Bus, Storage, ADO/JDBC-style, SAS URLs, OAuth form bodies).
 * `SharedAccessSignature=` values contain spaces and `&`, so they run to the next `;`.
 */
const SAS_PAIR = /(\bSharedAccessSignature\s*=\s*)[^;\s"']+(?: [^;"']*)?/gi;
const KEY_PAIRS =
  /(\b(?:SharedAccessKey|AccountKey|Password|Pwd|sig|client_secret|client_assertion|access_token|refresh_token|api[-_]?key)\s*=\s*)[^;&\s"']+/gi;
/** `scheme://user:password@host` → `scheme://user:***@host`. */
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/?#@"']*:)[^\s@/"']*(@)/gi;
/** `Authorization: Bearer xxx` headers in dumped requests. */
const BEARER = /(\bBearer\s+)[A-Za-z0-9\-._~+/]+=*/g;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Every way a value commonly shows up in text: raw, URL-encoded, form-encoded, JSON-escaped. */
function variants(value: string): string[] {
  const out = new Set<string>([value]);
  try {
    out.add(encodeURIComponent(value));
    out.add(encodeURIComponent(value).replace(/%20/g, '+'));
    out.add(encodeURI(value));
  } catch {
    // Lone surrogates cannot be URL-encoded; the raw form is still redacted.
  }
  out.add(JSON.stringify(value).slice(1, -1));
  return [...out].filter((v) => v !== '');
}

/**
 * Replaces every occurrence of the given secret values (and their URL-encoded and JSON-escaped
 * forms) with `***`, then masks password parts of connection strings and URLs
 * (`SharedAccessKey=`, `AccountKey=`, `Password=`, `sig=`, `postgres://user:pass@`, `Bearer …`).
 *
 * @param values secret values to remove; defaults to every value `cachedSecret` resolved in this
 *   process.
 */
export function redactSecrets(
  text: string,
  values: readonly string[] = knownSecretValues(),
): string {
  let out = text;
  const all = values.flatMap(variants);
  if (all.length > 0) {
    // Longest first, so a value that contains another is replaced whole.
    all.sort((a, b) => b.length - a.length);
    out = out.replace(new RegExp(all.map(escapeRegExp).join('|'), 'g'), MASK);
  }
  return out
    .replace(SAS_PAIR, `$1${MASK}`)
    .replace(KEY_PAIRS, `$1${MASK}`)
    .replace(URL_PASSWORD, `$1${MASK}$2`)
    .replace(BEARER, `$1${MASK}`);
}
