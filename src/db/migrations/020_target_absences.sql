-- When a retired target was written to again, the time it was off: a signature made then was made
-- on a page that did not name it, so no letter of it goes there (TARGET_SEEN), while those who
-- signed before it was taken off still count as having seen it.
CREATE TABLE target_absences (
  target_id bigint NOT NULL REFERENCES targets (id) ON DELETE CASCADE,
  retired_at timestamptz NOT NULL,
  reinstated_at timestamptz NOT NULL
);
CREATE INDEX target_absences_target_idx ON target_absences (target_id);
