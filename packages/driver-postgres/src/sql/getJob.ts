import { JOB_COLUMNS } from '../rows.js';

export const getJob = (s: string) => `SELECT ${JOB_COLUMNS} FROM ${s}.jobs WHERE id = $1`;
