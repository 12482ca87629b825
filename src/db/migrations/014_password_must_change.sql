-- An organizer whose password was generated and shown to someone else (the admin who added them
-- in the console) must choose their own before anything else in the console.
ALTER TABLE organizers ADD COLUMN password_must_change boolean NOT NULL DEFAULT false;
