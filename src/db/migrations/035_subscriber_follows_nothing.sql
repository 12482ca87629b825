-- A subscriber still active who follows no case (every box unticked on the preferences page, or
-- the last case they followed deleted) is sent nothing, and kept only until retention deletes
-- them as one who left: since when they follow nothing (see purgeUnsubscribed).
ALTER TABLE subscribers ADD COLUMN follows_nothing_since timestamptz;
