-- 025 first added a column for the reset form's key (organizers.password_reset_key) and was then
-- replaced, before any release, by console_requests, which keeps every key used. A database that
-- ran the first 025 gets the table here; the column is dropped.
CREATE TABLE IF NOT EXISTS console_requests (
  key text PRIMARY KEY,
  done_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE organizers DROP COLUMN IF EXISTS password_reset_key;
