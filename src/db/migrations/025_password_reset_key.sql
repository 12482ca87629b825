-- The console's "New password" form carries a key made when the list was shown, as the forms of
-- migration 024 do: sent twice (a reload of its answer, a double click), it resets once, and the
-- password its first answer showed stays the one that works.
ALTER TABLE organizers ADD COLUMN password_reset_key text;
