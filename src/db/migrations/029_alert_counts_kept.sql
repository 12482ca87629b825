-- An update's alerts sent or failed, a month after its fan-out ended, are folded into these
-- counts and their rows deleted (see foldSettledAlerts): a row per subscriber per update, each
-- naming its address, grew without end while the subscriber stayed. GET /alerts/:id and the
-- console add these to the rows still kept.
ALTER TABLE case_updates ADD COLUMN folded_sent integer NOT NULL DEFAULT 0;
ALTER TABLE case_updates ADD COLUMN folded_failed integer NOT NULL DEFAULT 0;
