-- Forms of the console that must act once however often they are sent (a reload of their answer,
-- a double click, an older answer reloaded later), by the key each showing of the form carries:
-- an organizer's new password, whose first answer showed the one that is to work.
CREATE TABLE console_requests (
  key text PRIMARY KEY,
  done_at timestamptz NOT NULL DEFAULT now()
);
