-- Schema 6: DescribeInstances filters on the image, the instance type and
-- the security lock. Existing rows take them from their record.
ALTER TABLE instances ADD COLUMN image_id TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN instance_type TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN security_locked INTEGER NOT NULL DEFAULT 0;
UPDATE instances SET
    image_id = COALESCE(json_extract(data, '$.ImageID'), ''),
    instance_type = COALESCE(json_extract(data, '$.InstanceType'), ''),
    security_locked = COALESCE(json_extract(data, '$.SecurityLocked'), 0);
