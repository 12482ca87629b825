-- A target no longer written to (an official who left office, or asked us to stop) that letters
-- went to already, so it stays on record: no new letter or digest goes to it, and it is off the
-- campaign page. A target with no letters is deleted instead.
ALTER TABLE targets ADD COLUMN retired_at timestamptz;
