import { RestError } from '@azure/storage-queue';
import { isSwitchyardError, SwitchyardError } from '@switchyard/core';
import { redactSecrets } from '@switchyard/core/driver';

/** HTTP status of a Storage REST error, if `err` is one. */
export function statusOf(err: unknown): number | undefined {
  return err instanceof RestError || (err as { name?: unknown } | null)?.name === 'RestError'
    ? (err as RestError).statusCode
    : undefined;
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Authentication / authorisation failure (a rotated or wrong key, an expired SAS). */
export function isAuthError(err: unknown): boolean {
  return statusOf(err) === 403;
}

/**
 * The pop receipt no longer matches: the visibility timeout expired and the message was received
 * again (or deleted). The message comes back on its own, so settlements ignore this.
 */
export function isLostReceipt(err: unknown): boolean {
  const status = statusOf(err);
  return status === 404 || (status === 400 && codeOf(err) === 'PopReceiptMismatch');
}

export function isAbortError(err: unknown): boolean {
  return (err as { name?: unknown } | null)?.name === 'AbortError';
}

/**
 * Wraps an SDK error in a {@link SwitchyardError}. The SDK error itself is not attached as
 * `cause`: it carries the request (URL with any SAS token, headers); the status, service error
 * code and redacted first line of its message are kept instead.
 */
export function backendError(operation: string, queue: string, err: unknown): SwitchyardError {
  if (isSwitchyardError(err)) return err;
  if (isAbortError(err)) {
    return new SwitchyardError('ABORTED', `storagequeue ${operation} on "${queue}" aborted`);
  }
  const status = statusOf(err);
  const code = codeOf(err);
  const text = err instanceof Error ? redactSecrets(err.message.split('\n')[0] ?? '') : '';
  const detail = [status, code].filter((x) => x !== undefined).join(' ');
  return new SwitchyardError(
    status === 403 ? 'AUTH_FAILED' : 'BACKEND_ERROR',
    `storagequeue ${operation} on "${queue}" failed${detail ? ` (${detail})` : ''}${text ? `: ${text}` : ''}`,
  );
}
