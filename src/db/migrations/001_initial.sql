-- Appeal's system of record. Every email the system will ever send is first a row in deliveries.

CREATE TABLE organizers (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  email text NOT NULL,
  name text NOT NULL DEFAULT '',
  password_hash text NOT NULL,
  role text NOT NULL DEFAULT 'organizer' CHECK (role IN ('admin', 'organizer')),
  failed_logins integer NOT NULL DEFAULT 0,
  locked_until timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX organizers_email_key ON organizers (lower(email));

CREATE TABLE api_tokens (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  organizer_id bigint NOT NULL REFERENCES organizers (id) ON DELETE CASCADE,
  token_hash text NOT NULL UNIQUE,
  label text NOT NULL DEFAULT '',
  last_used_at timestamptz,
  revoked_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cases (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  slug text NOT NULL UNIQUE,
  person_name text NOT NULL,
  summary text NOT NULL,
  status text NOT NULL CHECK (status IN ('detained', 'at_risk', 'on_trial', 'released', 'granted_stay', 'deported', 'missing')),
  location text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE case_updates (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  case_id bigint NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
  title text NOT NULL,
  body text NOT NULL,
  published_by bigint REFERENCES organizers (id) ON DELETE SET NULL,
  published_at timestamptz NOT NULL DEFAULT now(),
  recipients integer NOT NULL DEFAULT 0,
  fanned_out_at timestamptz
);
CREATE INDEX case_updates_case_idx ON case_updates (case_id, published_at DESC);

CREATE TABLE campaigns (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  slug text NOT NULL UNIQUE,
  case_id bigint NOT NULL REFERENCES cases (id) ON DELETE RESTRICT,
  title text NOT NULL,
  summary text NOT NULL DEFAULT '',
  letter_subject text NOT NULL,
  letter_body text NOT NULL,
  status text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'live', 'paused', 'closed')),
  delivery_mode text NOT NULL DEFAULT 'each' CHECK (delivery_mode IN ('each', 'digest')),
  digest_hour integer NOT NULL DEFAULT 9 CHECK (digest_hour BETWEEN 0 AND 23),
  goal integer CHECK (goal > 0),
  require_confirmation boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX campaigns_case_idx ON campaigns (case_id);

CREATE TABLE targets (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  campaign_id bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
  position integer NOT NULL DEFAULT 0,
  name text NOT NULL,
  title text NOT NULL DEFAULT '',
  email text NOT NULL,
  salutation text NOT NULL DEFAULT '',
  disclose text NOT NULL DEFAULT 'name_place' CHECK (disclose IN ('name', 'name_place', 'full'))
);
CREATE INDEX targets_campaign_idx ON targets (campaign_id, position);

CREATE TABLE signatures (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  campaign_id bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
  full_name text NOT NULL,
  email text NOT NULL,
  city text NOT NULL DEFAULT '',
  country text NOT NULL DEFAULT '',
  personal_note text NOT NULL DEFAULT '',
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'confirmed')),
  confirm_token_hash text UNIQUE,
  subscribe boolean NOT NULL DEFAULT false,
  ip_hash text,
  created_at timestamptz NOT NULL DEFAULT now(),
  confirmed_at timestamptz,
  digest_id bigint
);
CREATE UNIQUE INDEX signatures_campaign_email_key ON signatures (campaign_id, lower(email));
CREATE INDEX signatures_pending_idx ON signatures (created_at) WHERE status = 'pending';

CREATE TABLE subscribers (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  email text NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active', 'unsubscribed', 'bounced')),
  confirm_token_hash text UNIQUE,
  manage_token_hash text UNIQUE,
  consent_at timestamptz,
  consent_source text,
  consent_text text,
  created_at timestamptz NOT NULL DEFAULT now(),
  confirmed_at timestamptz,
  unsubscribed_at timestamptz
);
CREATE UNIQUE INDEX subscribers_email_key ON subscribers (lower(email));

CREATE TABLE subscriptions (
  subscriber_id bigint NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
  -- NULL means "all cases"; the expression index makes (subscriber, all) unique too.
  case_id bigint REFERENCES cases (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX subscriptions_key ON subscriptions (subscriber_id, coalesce(case_id, 0));
CREATE INDEX subscriptions_case_idx ON subscriptions (case_id, subscriber_id);

CREATE TABLE deliveries (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('confirm', 'optin', 'letter', 'digest', 'alert', 'welcome')),
  -- The row this delivery serves: a signature (confirm, letter), a subscriber (optin, welcome),
  -- a case update (alert) or a digest run (digest).
  source_id bigint NOT NULL,
  target_id bigint REFERENCES targets (id) ON DELETE CASCADE,
  subscriber_id bigint REFERENCES subscribers (id) ON DELETE CASCADE,
  campaign_id bigint REFERENCES campaigns (id) ON DELETE CASCADE,
  recipient text NOT NULL,
  status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sending', 'retry', 'sent', 'failed')),
  attempts integer NOT NULL DEFAULT 0,
  lease_until timestamptz,
  next_attempt_at timestamptz,
  last_error text,
  message_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  sent_at timestamptz
);
CREATE UNIQUE INDEX deliveries_once_key ON deliveries (kind, source_id, lower(recipient));
-- The sweeper reads only unfinished rows; a partial index keeps that cheap however many are sent.
CREATE INDEX deliveries_unfinished_idx ON deliveries (id) WHERE status IN ('queued', 'retry', 'sending');
CREATE INDEX deliveries_campaign_idx ON deliveries (campaign_id, status);

CREATE TABLE suppressions (
  email text PRIMARY KEY,
  reason text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_log (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  organizer_id bigint REFERENCES organizers (id) ON DELETE SET NULL,
  action text NOT NULL,
  object text NOT NULL DEFAULT '',
  detail jsonb,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC);
