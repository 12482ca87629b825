-- When the latest opt-in email was asked for. Retention counts from here, not from created_at:
-- someone who asks again after a week must not lose the opt-in email just sent.
ALTER TABLE subscribers ADD COLUMN optin_requested_at timestamptz NOT NULL DEFAULT now();
UPDATE subscribers SET optin_requested_at = created_at;
