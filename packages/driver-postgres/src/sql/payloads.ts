export const putPayload = (s: string) =>
  `INSERT INTO ${s}.payloads (key, data) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`;
export const getPayload = (s: string) => `SELECT data FROM ${s}.payloads WHERE key = $1`;
