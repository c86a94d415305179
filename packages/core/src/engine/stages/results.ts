import type { TaskResult } from '../../define.js';
import { taskId as makeTaskId } from '../../ids.js';
import type { Store } from '../../store.js';
import { DEFAULTS } from '../defaults.js';

/** Task rows per page when a store has no results-only listing. */
const TASK_PAGE = 1000;

/**
 * Streams a stage's succeeded results in task order, a page at a time: through the store's
 * results-only listing when it has one, else through its task pages.
 */
export async function* stageResults(
  store: Store,
  jobId: string,
  stage: number,
): AsyncIterable<TaskResult> {
  if (store.listResults) {
    const limit = DEFAULTS.resultsPageSize;
    let afterIndex = -1;
    for (;;) {
      const page = await store.listResults(jobId, stage, { afterIndex, limit });
      for (const r of page)
        yield {
          stage,
          index: r.index,
          taskId: makeTaskId(jobId, stage, r.index),
          result: r.result,
        };
      if (page.length < limit) return;
      afterIndex = page[page.length - 1]!.index;
    }
  }
  let cursor: string | undefined;
  do {
    const page = await store.listTasks(jobId, {
      stage,
      status: 'succeeded',
      limit: TASK_PAGE,
      ...(cursor ? { cursor } : {}),
    });
    for (const t of page.tasks)
      yield { stage: t.stage, index: t.index, taskId: t.id, result: t.result };
    cursor = page.nextCursor;
  } while (cursor);
}
