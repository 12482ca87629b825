-- A case update taken back by an organizer (posted by mistake, or saying what endangers someone):
-- off the public case page, and its alerts not yet sent are not sent. The row stays, with who
-- withdrew it and when, as the audit log says.
ALTER TABLE case_updates ADD COLUMN withdrawn_at timestamptz;
ALTER TABLE case_updates ADD COLUMN withdrawn_by bigint REFERENCES organizers (id) ON DELETE SET NULL;
