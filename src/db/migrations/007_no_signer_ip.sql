-- A signer's IP was kept as a keyed hash that nothing read: with the secret beside it, all of IPv4
-- is a few hours of hashing away. Personal data no feature needs is not kept.
ALTER TABLE signatures DROP COLUMN ip_hash;
