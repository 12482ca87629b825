-- How many alerts an update's fan-out made, once it is done: `recipients` stays what was counted
-- when it was posted (the answer a repeated Idempotency-Key gets again), and people who confirmed
-- or left while the fan-out waited make the two differ. GET /alerts/:id reports this one.
ALTER TABLE case_updates ADD COLUMN reached integer;
