import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { SwitchyardError } from '@switchyard/core';

/**
 * The embedded store's folder belongs to one process at a time. PGlite keeps the database in this
 * process's memory and writes it back to the folder: a second process opening the same folder
 * works on its own copy, and what it commits (a submitted job) is overwritten by the first. A lock
 * file beside the folder (`<dir>.lock`, the owner's pid) keeps a second process out with a clear
 * error; a lock whose process is gone (killed) is taken over.
 * @returns the release, which removes the lock if it is still this process's
 * @throws SwitchyardError `CONFIG_ERROR` naming `SWITCHYARD_DATA_DIR` when another live process
 *   holds the folder, or when the folder cannot be made
 */
export async function lockDataDir(dir: string): Promise<() => Promise<void>> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw dataDirError(
      `cannot use ${dir} as the embedded store's folder: ${(err as Error).message}`,
      'must be a folder this process can create or write',
      err,
    );
  }
  const path = `${dir}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const file = await open(path, 'wx');
      await file.writeFile(String(process.pid));
      await file.close();
      return async () => {
        if ((await readFile(path, 'utf8').catch(() => '')) === String(process.pid))
          await unlink(path).catch(() => {});
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number(await readFile(path, 'utf8').catch(() => ''));
    if (Number.isSafeInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner))
      throw dataDirError(
        `the embedded store in ${dir} is open in another process (pid ${owner}): stop it first, or set DATABASE_URL so several processes share a PostgreSQL server`,
        `in use by process ${owner}`,
      );
    // Its owner is gone (or wrote nothing): the lock is stale.
    await unlink(path).catch(() => {});
  }
  throw dataDirError(
    `the embedded store in ${dir} is being opened by another process`,
    'in use by another process',
  );
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, but is another user's.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function dataDirError(message: string, issue: string, cause?: unknown): SwitchyardError {
  return new SwitchyardError('CONFIG_ERROR', message, {
    ...(cause === undefined ? {} : { cause }),
    issues: [{ path: 'SWITCHYARD_DATA_DIR', message: issue }],
  });
}
