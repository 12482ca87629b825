-- A campaign's letters and digests newest first, a page at a time (the console's Letters page).
-- deliveries_campaign_kind_idx (campaign_id, kind, status) cannot give them in id order, so
-- Postgres walked the whole table back by its primary key, past every other campaign's emails
-- and every confirmation: 0.3–0.6 s a page against 1.2 million deliveries, longest for a digest
-- campaign, which has few letters. Alerts and confirmations, most of the rows, are not in it.
CREATE INDEX deliveries_campaign_letters_idx ON deliveries (campaign_id, id) WHERE kind IN ('letter', 'digest');
