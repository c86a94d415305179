/** Every schedule's stored state. */
export const getScheduleStates = (s: string) => `
SELECT name, paused, cursor_at, last_fire_at, last_job_id FROM ${s}.schedules ORDER BY name`;
