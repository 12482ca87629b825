-- A signer's IP was kept as a keyed hash that nothing read: with the secret beside it, all of IPv4
-- is a few hours of hashing away. Personal data no feature needs is not kept: the hashes go now,
-- and nothing writes the column any more. The column itself is dropped by a later migration, once
-- no process of a version that still writes it can be running (web processes of the previous
-- version keep signing while a deploy's migration runs).
UPDATE signatures SET ip_hash = NULL WHERE ip_hash IS NOT NULL;
