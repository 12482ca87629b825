-- Who acted stays on each entry: removing an organizer, the usual answer to a misused account,
-- must not make what they did (an export of the signers, say) anonymous. Entries made so far
-- take the address of an organizer still there; those of one removed already cannot.
ALTER TABLE audit_log ADD COLUMN actor text;
UPDATE audit_log a SET actor = o.email FROM organizers o WHERE o.id = a.organizer_id;
