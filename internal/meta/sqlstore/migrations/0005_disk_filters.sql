-- Schema 5: DescribeDisks filters on the disk's flags, its encryption key
-- and its financial lock (in arrears).
-- Existing rows take them from their record.
ALTER TABLE disks ADD COLUMN portable INTEGER NOT NULL DEFAULT 0;
ALTER TABLE disks ADD COLUMN delete_with_instance INTEGER NOT NULL DEFAULT 0;
ALTER TABLE disks ADD COLUMN delete_auto_snapshot INTEGER NOT NULL DEFAULT 0;
ALTER TABLE disks ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE disks ADD COLUMN multi_attach INTEGER NOT NULL DEFAULT 0;
ALTER TABLE disks ADD COLUMN kms_key_id TEXT NOT NULL DEFAULT '';
ALTER TABLE disks ADD COLUMN in_arrears INTEGER NOT NULL DEFAULT 0;
UPDATE disks SET
    portable = COALESCE(json_extract(data, '$.Portable'), 0),
    delete_with_instance = COALESCE(json_extract(data, '$.DeleteWithInstance'), 0),
    delete_auto_snapshot = COALESCE(json_extract(data, '$.DeleteAutoSnapshot'), 0),
    encrypted = COALESCE(json_extract(data, '$.Encrypted'), 0),
    multi_attach = COALESCE(json_extract(data, '$.MultiAttach'), 0),
    kms_key_id = COALESCE(json_extract(data, '$.KMSKeyID'), ''),
    in_arrears = COALESCE(json_extract(data, '$.InArrears'), 0);
