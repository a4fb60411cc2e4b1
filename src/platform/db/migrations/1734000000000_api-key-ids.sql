-- Up Migration

-- Operators list and revoke keys by a public id (`key_` + 12 characters),
-- never by the key or its hash. Keys stored before this migration get one
-- drawn here; the api makes the id of every new key (newApiKeyId), and the
-- default covers a writer that predates this column during a rolling start.
ALTER TABLE api_keys ADD COLUMN id text COLLATE "C"
  DEFAULT 'key_' || substr(md5(random()::text || clock_timestamp()::text), 1, 12);
UPDATE api_keys SET id = 'key_' || substr(md5(random()::text || encode(key_hash, 'hex')), 1, 12) WHERE id IS NULL;
ALTER TABLE api_keys ALTER COLUMN id SET NOT NULL;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_id_key UNIQUE (id);
ALTER TABLE api_keys ADD CONSTRAINT api_keys_id_format CHECK (id ~ '^key_[0-9a-z]{12}$');
-- GET /v1/ops/keys pages by creation, then id.
CREATE INDEX api_keys_created ON api_keys (created_at, id);

-- Down Migration
DROP INDEX api_keys_created;
ALTER TABLE api_keys DROP CONSTRAINT api_keys_id_format;
ALTER TABLE api_keys DROP CONSTRAINT api_keys_id_key;
ALTER TABLE api_keys DROP COLUMN id;
