-- Flow control: per-key concurrency slots under leases and per-key rate limits, shared by every
-- worker of the schema (core's FlowControlCapability). Times are the database's clock, so workers
-- whose clocks disagree still count one window.

-- One row per concurrency key: the lock that serialises its admissions.
CREATE TABLE flow_keys (
  scope text NOT NULL,
  key   text NOT NULL,
  PRIMARY KEY (scope, key)
);

-- A held slot; it counts while expires_at is in the future (a dead worker's slot runs out).
CREATE TABLE flow_slots (
  scope      text NOT NULL,
  key        text NOT NULL,
  holder     text NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (scope, key, holder)
);

-- A rate-limit key: its admissions within the last period, ms since the epoch, ascending.
CREATE TABLE flow_rates (
  scope  text NOT NULL,
  key    text NOT NULL,
  starts bigint[] NOT NULL DEFAULT '{}',
  PRIMARY KEY (scope, key)
);

-- What a task's last refused admission waited for ('concurrency' or 'rateLimit'); cleared when it
-- is admitted. Only waiting tasks are in the index: getJob and metrics count them from it.
ALTER TABLE tasks ADD COLUMN waiting text;
CREATE INDEX tasks_waiting_idx ON tasks (job_id, stage) WHERE waiting IS NOT NULL;

-- One admission, atomically: the task may run (pending or running, its job running), then its
-- key slot and its rate-limit start are taken together or not at all. Locks: the key's flow_keys
-- row, then the rate key's flow_rates row, then the task row (no statement takes them in another
-- order: nothing else locks flow rows). A refusal marks the task waiting and moves its
-- lost-message clock to when its deferred message is due (p_wait_ms, plus the rate wait).
CREATE FUNCTION flow_admit(
  p_job_id text, p_stage int, p_idx int,
  p_slot_scope text, p_slot_key text, p_slot_limit int, p_holder text, p_lease_ms int,
  p_rate_scope text, p_rate_key text, p_rate_limit int, p_period_ms int,
  p_wait_ms int,
  OUT outcome text, OUT retry_after_ms bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_now    timestamptz := clock_timestamp();
  v_now_ms bigint := floor(extract(epoch FROM v_now) * 1000)::bigint;
  v_marked text;
  v_held   int;
  v_starts bigint[];
BEGIN
  SELECT t.waiting INTO v_marked
    FROM tasks t JOIN jobs j ON j.id = t.job_id
   WHERE (t.job_id, t.stage, t.idx) = (p_job_id, p_stage, p_idx)
     AND t.status IN ('pending', 'running') AND j.status = 'running';
  IF NOT FOUND THEN
    outcome := 'not-runnable';
    RETURN;
  END IF;
  IF p_slot_scope IS NOT NULL THEN
    INSERT INTO flow_keys (scope, key) VALUES (p_slot_scope, p_slot_key) ON CONFLICT DO NOTHING;
    PERFORM 1 FROM flow_keys WHERE scope = p_slot_scope AND key = p_slot_key FOR UPDATE;
    DELETE FROM flow_slots
     WHERE scope = p_slot_scope AND key = p_slot_key AND expires_at <= v_now;
    SELECT count(*) INTO v_held FROM flow_slots WHERE scope = p_slot_scope AND key = p_slot_key;
    IF v_held >= p_slot_limit THEN
      outcome := 'concurrency';
    END IF;
  END IF;
  IF outcome IS NULL AND p_rate_scope IS NOT NULL THEN
    INSERT INTO flow_rates (scope, key) VALUES (p_rate_scope, p_rate_key) ON CONFLICT DO NOTHING;
    SELECT starts INTO v_starts FROM flow_rates
     WHERE scope = p_rate_scope AND key = p_rate_key FOR UPDATE;
    v_starts := ARRAY(SELECT s FROM unnest(v_starts) AS s
                       WHERE s > v_now_ms - p_period_ms ORDER BY s);
    IF cardinality(v_starts) >= p_rate_limit THEN
      outcome := 'rateLimit';
      -- The start that has to leave the window before one is free.
      retry_after_ms := greatest(1,
        v_starts[cardinality(v_starts) - p_rate_limit + 1] + p_period_ms - v_now_ms);
      UPDATE flow_rates SET starts = v_starts WHERE scope = p_rate_scope AND key = p_rate_key;
    ELSE
      UPDATE flow_rates SET starts = v_starts || v_now_ms
       WHERE scope = p_rate_scope AND key = p_rate_key;
    END IF;
  END IF;
  IF outcome IS NOT NULL THEN
    UPDATE tasks
       SET waiting = outcome,
           updated_at = v_now + (p_wait_ms + coalesce(retry_after_ms, 0)) * interval '1 millisecond'
     WHERE (job_id, stage, idx) = (p_job_id, p_stage, p_idx);
    RETURN;
  END IF;
  IF p_slot_scope IS NOT NULL THEN
    INSERT INTO flow_slots (scope, key, holder, expires_at)
    VALUES (p_slot_scope, p_slot_key, p_holder, v_now + p_lease_ms * interval '1 millisecond')
    ON CONFLICT (scope, key, holder) DO UPDATE SET expires_at = EXCLUDED.expires_at;
  END IF;
  IF v_marked IS NOT NULL THEN
    UPDATE tasks SET waiting = NULL WHERE (job_id, stage, idx) = (p_job_id, p_stage, p_idx);
  END IF;
  outcome := 'admitted';
END $$;
