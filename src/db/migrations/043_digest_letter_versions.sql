-- A digest letter carries the text its signers confirmed: a letter saved anew while they waited
-- for the day's digest kept the text they signed (letter_versions, signatures.letter_version_id),
-- and the day's letters are split by it. Null: the campaign's letter as it reads when it goes.
ALTER TABLE digests ADD COLUMN letter_version_id bigint REFERENCES letter_versions (id);
