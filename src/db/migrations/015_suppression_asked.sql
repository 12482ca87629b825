-- When an email a person asked for on a form (a confirmation, an opt-in) went to this suppressed
-- address: it goes once per suppression, so nobody can keep mailing an address that bounced.
ALTER TABLE suppressions ADD COLUMN asked_at timestamptz;
