-- An opt-in email asked for again while the one before it was being sent, owed once that send
-- has ended. Its delayed job lives in Redis, which may lose it (a restart with nothing on disk):
-- kept here too, the sweeper adds the job again.
ALTER TABLE subscribers ADD COLUMN optin_owed_at timestamptz;
CREATE INDEX subscribers_optin_owed_idx ON subscribers (optin_owed_at) WHERE optin_owed_at IS NOT NULL;
