-- When a subscriber's address bounced, which retention counts from (purgeUnsubscribed). It was
-- read off the address's suppression, and a suppression lifted by a link followed in another
-- email (a signature confirmed from that inbox) left a bounced subscriber with nothing to count
-- from: the next purge deleted them at once, not RETENTION_UNSUBSCRIBED_DAYS later.
ALTER TABLE subscribers ADD COLUMN bounced_at timestamptz;
UPDATE subscribers s
   SET bounced_at = coalesce((SELECT x.created_at FROM suppressions x WHERE x.email = lower(s.email)), now())
 WHERE s.status = 'bounced';
