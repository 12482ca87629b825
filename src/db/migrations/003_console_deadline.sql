-- A campaign may have a deadline (a hearing, a deportation date): the console's dashboard warns
-- as it nears. A date without time: the day matters, not the hour.
ALTER TABLE campaigns ADD COLUMN deadline date;
