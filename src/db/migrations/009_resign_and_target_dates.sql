-- Signing again while a signature waits for confirmation replaces what it says and sends a new
-- confirmation email, whose link is derived from the round: the older link stops working. Without
-- it, whoever signed first with an address decided what a letter in that person's name said.
ALTER TABLE signatures ADD COLUMN confirm_round integer NOT NULL DEFAULT 0;

-- A signer agrees to the targets the campaign page showed. A target added later does not get the
-- letters of those who signed before it was added. Targets that existed before this column count
-- as always there.
ALTER TABLE targets ADD COLUMN added_at timestamptz NOT NULL DEFAULT '-infinity';
ALTER TABLE targets ALTER COLUMN added_at SET DEFAULT now();
