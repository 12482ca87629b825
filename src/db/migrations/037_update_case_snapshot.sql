-- An alert shows the case as it was when its update was posted: composed from the case's row at
-- send time, the alerts of one update still queued when an organizer set the case to "released"
-- said "released" above news written while the person was detained, and the first ones did not.
-- Updates posted before this keep reading the case's row (the columns are null for them).
ALTER TABLE case_updates ADD COLUMN case_person_name text, ADD COLUMN case_status text, ADD COLUMN case_location text;
