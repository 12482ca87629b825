-- The language a case is written in (a BCP 47 tag: kk, ru, ug, en …; empty: the site's, English):
-- its pages, its campaigns' pages and letters, and its alerts mark their text with it (`lang`), so
-- a screen reader reads Kazakh or Uyghur in its own voice, not with English rules.
ALTER TABLE cases ADD COLUMN language text NOT NULL DEFAULT '';
