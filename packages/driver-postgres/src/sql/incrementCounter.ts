export const incrementCounter = (s: string) => `
INSERT INTO ${s}.counters (transport, name, value) VALUES ($1, $2, $3::bigint)
ON CONFLICT (transport, name) DO UPDATE SET value = counters.value + EXCLUDED.value`;
