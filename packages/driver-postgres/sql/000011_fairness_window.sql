-- The fairness window (batching.window): a windowed stage's tasks are let into the transport a
-- window at a time. `released`: the tasks below this index were released; NULL: the stage is not
-- windowed, every task was sent as it was inserted. `released_at`: when the released range last
-- grew; the reconciler counts a released task's silence from it at the earliest. Nullable columns
-- without a default: adding them rewrites no row.
ALTER TABLE stages
  ADD COLUMN released int,
  ADD COLUMN released_at timestamptz;
