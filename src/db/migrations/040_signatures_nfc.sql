-- Text is kept composed (NFC) since 2026-12-07: a name sent with its accents as separate marks
-- ("и" and a breve for "й") was not found by a console search typed the usual way. The signatures
-- stored before then are composed here; those already composed (nearly all) are not written.
UPDATE signatures
   SET full_name = normalize(full_name, NFC), city = normalize(city, NFC), country = normalize(country, NFC), personal_note = normalize(personal_note, NFC)
 WHERE NOT (full_name IS NFC NORMALIZED AND city IS NFC NORMALIZED AND country IS NFC NORMALIZED AND personal_note IS NFC NORMALIZED);
