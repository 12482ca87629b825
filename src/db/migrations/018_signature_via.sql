-- Where a signature was made: the campaign page's form, or a page embedding it through the public
-- API. A signer's request for alerts keeps it as its consent record's source, with the wording the
-- signer saw (the sign form's box, or only the confirmation page's). Signatures made so far are
-- taken as the form's: which ones came through the API was not kept.
ALTER TABLE signatures ADD COLUMN via text NOT NULL DEFAULT 'sign form' CHECK (via IN ('sign form', 'api'));
