-- The console's audit log can be read for one organizer ("what did they do before they left?"):
-- a page of their entries, newest first, without reading everyone's.
CREATE INDEX audit_log_actor_idx ON audit_log (lower(actor), id DESC);
