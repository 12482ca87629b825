-- A case an organizer is still preparing can be kept off the public site: the person's name and
-- story go public when the organizer says so, not when the case is first saved. Cases made so far
-- were public from the start, and stay so.
ALTER TABLE cases ADD COLUMN published boolean NOT NULL DEFAULT true;
