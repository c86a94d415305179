-- Times the reconciler re-sent a task's message: each re-send doubles the wait before the task
-- counts as lost again, so a queue backlog is not flooded with copies (core's touchTasks).
ALTER TABLE tasks ADD COLUMN redrives int NOT NULL DEFAULT 0;
