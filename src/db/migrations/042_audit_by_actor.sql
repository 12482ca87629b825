-- The console's audit log can be read for one organizer ("what did they do before they left?"):
-- a page of their entries, newest first, without reading everyone's. By the address an entry was
-- made under, and by the organizer (whose address may have been corrected since).
CREATE INDEX audit_log_actor_idx ON audit_log (lower(actor), id DESC);
CREATE INDEX audit_log_organizer_idx ON audit_log (organizer_id, id DESC) WHERE organizer_id IS NOT NULL;
