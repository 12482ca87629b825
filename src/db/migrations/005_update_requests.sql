-- A case update goes to every follower: posting the same request twice (a double click, an API
-- client retrying after a lost answer) must not send everyone two alerts. The poster's request
-- key makes the second post return the first update.
ALTER TABLE case_updates ADD COLUMN request_key text;
CREATE UNIQUE INDEX case_updates_request_key ON case_updates (case_id, request_key) WHERE request_key IS NOT NULL;
