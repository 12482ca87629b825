-- The console's forms that show a secret once (a new organizer's password, a new API token) carry
-- a key made when the form was shown. The same form sent twice (a double click, a reload of the
-- answer) finds the row its first sending made, instead of adding a second token nobody saw or
-- answering "exists already" where the password was to be shown.
ALTER TABLE organizers ADD COLUMN request_key text;
CREATE UNIQUE INDEX organizers_request_key_idx ON organizers (request_key);
ALTER TABLE api_tokens ADD COLUMN request_key text;
CREATE UNIQUE INDEX api_tokens_request_key_idx ON api_tokens (request_key);
