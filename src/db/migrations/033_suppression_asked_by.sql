-- Which delivery took a suppression's one asked-for email (asked_at): its own retries after a
-- temporary failure (greylisting, a relay down) go on, where any other delivery is refused.
ALTER TABLE suppressions ADD COLUMN asked_by bigint;
