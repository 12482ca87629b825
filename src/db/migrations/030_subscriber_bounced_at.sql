-- When a subscriber's address bounced, which retention counts from (purgeUnsubscribed). It was
-- read off the address's suppression, and a suppression lifted by a link followed in another
-- email (a signature confirmed from that inbox) left a bounced subscriber with nothing to count
-- from: the next purge deleted them at once, not RETENTION_UNSUBSCRIBED_DAYS later.
ALTER TABLE subscribers ADD COLUMN bounced_at timestamptz;
UPDATE subscribers s
   SET bounced_at = coalesce((SELECT x.created_at FROM suppressions x WHERE x.email = lower(s.email)), now())
 WHERE s.status = 'bounced';

-- Stamped by the database whichever statement bounces a subscriber, so a worker of the previous
-- version, still running while the workers are upgraded one by one, stamps it too.
CREATE FUNCTION subscriber_bounced() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.bounced_at := now(); RETURN NEW; END $$;
CREATE TRIGGER subscriber_bounced BEFORE UPDATE OF status ON subscribers
  FOR EACH ROW WHEN (NEW.status = 'bounced' AND OLD.status IS DISTINCT FROM 'bounced')
  EXECUTE FUNCTION subscriber_bounced();
