export const getJob = (s: string) => `SELECT * FROM ${s}.jobs WHERE id = $1`;
