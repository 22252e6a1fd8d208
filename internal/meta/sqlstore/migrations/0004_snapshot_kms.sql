-- Schema 4: snapshots can be filtered by the KMS key of their encryption
-- (DescribeSnapshots KMSKeyId). Existing rows take it from their record.
ALTER TABLE snapshots ADD COLUMN kms_key_id TEXT NOT NULL DEFAULT '';
UPDATE snapshots SET kms_key_id = COALESCE(json_extract(data, '$.KMSKeyID'), '');
