-- A supporter signs the letter the campaign page showed them. Letters are composed when they go,
-- which for a signer who confirms days later, or a letter that retries, is after an organizer may
-- have edited the template. So an edit first keeps the text it replaces here, and every signature
-- made under that text points at it; a signature without one was made under the current text.
CREATE TABLE letter_versions (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  campaign_id bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
  letter_subject text NOT NULL,
  letter_body text NOT NULL,
  replaced_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX letter_versions_campaign_idx ON letter_versions (campaign_id);

ALTER TABLE signatures ADD COLUMN letter_version_id bigint REFERENCES letter_versions (id);
