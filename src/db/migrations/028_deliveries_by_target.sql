-- A target's letters and digests by the address they went to: the Targets page finds those sent
-- to an address the official has since been corrected from (two range scans, not every letter of
-- the campaign), and removing a target no longer scans every delivery for its foreign key.
-- Alerts and confirmations name no target, and are not in it.
CREATE INDEX deliveries_target_recipient_idx ON deliveries (target_id, lower(recipient)) WHERE target_id IS NOT NULL;
