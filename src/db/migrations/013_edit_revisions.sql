-- Counts the saves of what organizers edit in forms (a campaign's details and letter, a case), so
-- a form opened before someone else saved is refused instead of quietly undoing their change.
ALTER TABLE campaigns ADD COLUMN revision integer NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN revision integer NOT NULL DEFAULT 0;
