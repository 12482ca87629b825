-- Who made each API token: an admin may make one that acts as another organizer, and removing or
-- demoting that admin revokes it (the admin saw the token; the organizer it acts as may never have).
-- Null for one made with the command line, and for one whose maker is gone. Tokens made before
-- this column get their maker from the audit entry of their making, where it names the token.
ALTER TABLE api_tokens ADD COLUMN made_by bigint REFERENCES organizers (id) ON DELETE SET NULL;
UPDATE api_tokens t SET made_by = a.organizer_id
  FROM audit_log a
 WHERE a.action = 'token.create' AND a.organizer_id IS NOT NULL AND a.detail ->> 'token' = t.id::text;
CREATE INDEX api_tokens_made_by_idx ON api_tokens (made_by) WHERE made_by IS NOT NULL;
