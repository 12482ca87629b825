-- Subscribers, case alerts and letter digests.

-- A subscription asked for through a form stays pending until its opt-in email is confirmed;
-- alerts go to active ones only. The consent columns record, per subscription, which form it
-- came through and the wording that form showed.
ALTER TABLE subscriptions ADD COLUMN status text NOT NULL DEFAULT 'active' CHECK (status IN ('pending', 'active'));
ALTER TABLE subscriptions ADD COLUMN consent_source text;
ALTER TABLE subscriptions ADD COLUMN consent_text text;
ALTER TABLE subscriptions ADD COLUMN confirmed_at timestamptz;

-- Each new opt-in email starts a new round and its link is derived from the round, so a link
-- from an older opt-in email stops working once a newer one is sent.
ALTER TABLE subscribers ADD COLUMN optin_round integer NOT NULL DEFAULT 0;

-- Deleting a subscriber cascades to its deliveries: without this index every delete scans them all.
CREATE INDEX deliveries_subscriber_idx ON deliveries (subscriber_id) WHERE subscriber_id IS NOT NULL;

-- One digest run: the signatures it claimed point at it (signatures.digest_id), and its letters
-- are deliveries of kind 'digest' with source_id = digests.id. Claiming and inserting the letters
-- happen in one transaction, so a signer is in exactly one digest.
CREATE TABLE digests (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  campaign_id bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
  signatures integer NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX digests_campaign_idx ON digests (campaign_id, created_at DESC);
ALTER TABLE signatures ADD CONSTRAINT signatures_digest_fk FOREIGN KEY (digest_id) REFERENCES digests (id);
CREATE INDEX signatures_undigested_idx ON signatures (campaign_id, id) WHERE status = 'confirmed' AND digest_id IS NULL;
CREATE INDEX signatures_digest_idx ON signatures (digest_id, id) WHERE digest_id IS NOT NULL;
