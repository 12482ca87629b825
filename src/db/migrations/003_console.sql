-- Organizer console sessions. The cookie carries a random id; this table holds only its sha256,
-- so a copy of the database signs nobody in.
CREATE TABLE organizer_sessions (
  id_hash text PRIMARY KEY,
  organizer_id bigint NOT NULL REFERENCES organizers (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX organizer_sessions_organizer_idx ON organizer_sessions (organizer_id);
CREATE INDEX organizer_sessions_expires_idx ON organizer_sessions (expires_at);

-- The audit log is read newest first, per organizer and per action.
CREATE INDEX audit_log_action_idx ON audit_log (action, id DESC);

-- Recent signatures and the chart read one campaign's rows by time.
CREATE INDEX signatures_campaign_created_idx ON signatures (campaign_id, created_at);
