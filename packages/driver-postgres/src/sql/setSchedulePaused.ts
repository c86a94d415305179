/** Pauses ($2 true) or resumes schedule $1, creating its row. */
export const setSchedulePaused = (s: string) => `
INSERT INTO ${s}.schedules AS sc (name, paused) VALUES ($1, $2::boolean)
ON CONFLICT (name) DO UPDATE SET paused = EXCLUDED.paused, updated_at = now()`;
