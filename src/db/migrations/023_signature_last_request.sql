-- Which sign request for a pending signature's address came last, by the id reserved for it (the
-- signature's own id when it was stored): the details of two requests moments apart are applied
-- after each is answered, in whichever order their work runs, and only the newest's may stay
-- (signAgain). NULL on rows from before it.
ALTER TABLE signatures ADD COLUMN last_request bigint;
