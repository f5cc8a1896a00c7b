-- A dead letter is "the same one" when its whole event (every attribute, the error extensions
-- included, and the data) is: event ids alone repeat, e.g. a KafkaSource's partition:offset ids
-- start again on a new topic, and two different failures must both be kept.
ALTER TABLE dead_letters ADD COLUMN digest bytea;
UPDATE dead_letters SET digest = sha256(convert_to(attributes::text, 'UTF8') || coalesce(data, ''::bytea));
ALTER TABLE dead_letters ALTER COLUMN digest SET NOT NULL;
ALTER TABLE dead_letters DROP CONSTRAINT dead_letters_event_id_event_source_error_dest_key;
ALTER TABLE dead_letters ADD CONSTRAINT dead_letters_digest_key UNIQUE (digest);
