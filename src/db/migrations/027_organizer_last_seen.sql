-- When an organizer was last seen in the console, kept when their sessions end (signing out, a
-- new password, expiry): the organizers page showed only live sessions' times, so someone who
-- signed out looked as if they had never signed in.
ALTER TABLE organizers ADD COLUMN last_seen_at timestamptz;
