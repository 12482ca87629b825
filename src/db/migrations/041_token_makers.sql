-- Who made each API token: an admin may make one that acts as another organizer, and removing or
-- demoting that admin revokes it (the admin saw the token; the organizer it acts as may never have).
-- Null for one made with the command line, and for one whose maker is gone. Tokens made before
-- this column get their maker from the audit entry of their making, where it names the token
-- (entries since 2026-12-05 do).
ALTER TABLE api_tokens ADD COLUMN made_by bigint REFERENCES organizers (id) ON DELETE SET NULL;
UPDATE api_tokens t SET made_by = a.organizer_id
  FROM audit_log a
 WHERE a.action = 'token.create' AND a.organizer_id IS NOT NULL AND a.detail ->> 'token' = t.id::text;
CREATE INDEX api_tokens_made_by_idx ON api_tokens (made_by) WHERE made_by IS NOT NULL;

-- What the new rule would have revoked already: live tokens acting as another organizer, made in
-- the console by an admin since removed (the entry keeps their address, not their id) or no longer
-- an admin. Each revocation is in the audit log, by no one, with why.
WITH stale AS (
  SELECT t.id, 'its maker was removed' AS why
    FROM api_tokens t JOIN audit_log a ON a.action = 'token.create' AND a.detail ->> 'token' = t.id::text
   WHERE t.revoked_at IS NULL AND a.organizer_id IS NULL AND a.actor IS NOT NULL AND coalesce(a.detail ->> 'by', '') <> 'cli'
  UNION
  SELECT t.id, 'its maker is no longer an admin'
    FROM api_tokens t JOIN organizers m ON m.id = t.made_by
   WHERE t.revoked_at IS NULL AND m.role <> 'admin' AND t.organizer_id <> t.made_by
), revoked AS (
  UPDATE api_tokens t SET revoked_at = now() FROM stale WHERE t.id = stale.id RETURNING t.id, stale.why
)
INSERT INTO audit_log (organizer_id, actor, action, object, detail)
SELECT NULL, NULL, 'token.revoke', 'token:' || id, jsonb_build_object('why', why, 'by', 'upgrade')
  FROM revoked;
