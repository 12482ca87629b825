-- A campaign closed while still a draft was put away, not launched: its page, its letter and its
-- officials stay private, and it does not announce its case (see LAUNCHED). Before, closing a
-- draft made it public like any closed campaign.
ALTER TABLE campaigns ADD COLUMN discarded boolean NOT NULL DEFAULT false;

-- Set by the database on the move itself, so a web process of the previous version, still
-- running during an upgrade, puts away a draft it closes too.
CREATE FUNCTION campaign_discarded() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.discarded := true; RETURN NEW; END $$;
CREATE TRIGGER campaign_discarded BEFORE UPDATE OF status ON campaigns
  FOR EACH ROW WHEN (OLD.status = 'draft' AND NEW.status = 'closed')
  EXECUTE FUNCTION campaign_discarded();

-- Drafts closed before: every launch from the console or the API is in the audit log, and a
-- draft takes no signatures. A closed campaign with neither was never launched, or launched
-- and closed with nobody signing, whose page then showed nothing anyone did.
UPDATE campaigns c SET discarded = true
 WHERE c.status = 'closed'
   AND NOT EXISTS (SELECT 1 FROM signatures s WHERE s.campaign_id = c.id)
   AND NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.action = 'campaign.launch' AND a.object = 'campaign:' || c.slug);
