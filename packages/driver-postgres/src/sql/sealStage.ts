/**
 * Seals a fanning-out stage with its total. If every task is already terminal the same UPDATE
 * flips it to complete; the `status = 'fanning_out'` guard and the row lock mean exactly one
 * caller seals, and completeTasks never completes an unsealed stage.
 */
export const sealStage = (s: string) => `
UPDATE ${s}.stages
   SET total = $3::int,
       sealed_at = now(),
       status = CASE WHEN succeeded + failed >= $3::int THEN 'complete' ELSE 'sealed' END,
       completed_at = CASE WHEN succeeded + failed >= $3::int THEN now() END,
       running = CASE WHEN succeeded + failed >= $3::int THEN 0 ELSE running END
 WHERE job_id = $1 AND idx = $2::int AND status = 'fanning_out'
RETURNING status, succeeded, failed, total`;
