-- A campaign closed while still a draft was thrown away, not launched: its page, its letter and
-- its officials stay private, and it does not announce its case (see LAUNCHED). Before, closing
-- a draft made it public like any closed campaign. Drafts closed before this are not told apart.
ALTER TABLE campaigns ADD COLUMN discarded boolean NOT NULL DEFAULT false;
