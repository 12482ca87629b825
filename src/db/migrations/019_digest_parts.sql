-- A day with more new signers than one letter carries (DIGEST_MAX_SIGNERS) sends that day's
-- digest in parts, made together: each letter says which part it is of how many, so an official
-- can tell they belong together and whether one is missing. Digests made so far were one part.
ALTER TABLE digests ADD COLUMN part integer NOT NULL DEFAULT 1, ADD COLUMN parts integer NOT NULL DEFAULT 1;
