-- Failed sign-ins count within a window: a typo months ago must not bring a lockout closer.
ALTER TABLE organizers ADD COLUMN last_failed_login_at timestamptz;
