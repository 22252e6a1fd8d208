-- Schema 3: instances, disks and snapshots carry the product that owns
-- them ('' for ECS, 'ecd' for EDS cloud computers and their disks), so
-- that each product lists only its own.
ALTER TABLE instances ADD COLUMN product TEXT NOT NULL DEFAULT '';
ALTER TABLE disks ADD COLUMN product TEXT NOT NULL DEFAULT '';
ALTER TABLE snapshots ADD COLUMN product TEXT NOT NULL DEFAULT '';
