-- How many times a pending signature was replaced by signing again. The confirmation page sends the
-- number it showed, and a button pressed on a page that showed an older version confirms nothing:
-- the words confirmed are the words the person saw.
ALTER TABLE signatures ADD COLUMN edits integer NOT NULL DEFAULT 0;

-- The kind of email an address was refused on: `letter` or `digest` for an official's address,
-- another kind for a supporter's or a subscriber's. Only admins see the latter. NULL: refused
-- before this was kept, shown to admins only.
ALTER TABLE suppressions ADD COLUMN kind text;

-- Facts about this installation that every process checks when it starts (see src/boot.ts).
CREATE TABLE settings (
  name text PRIMARY KEY,
  value text NOT NULL
);
