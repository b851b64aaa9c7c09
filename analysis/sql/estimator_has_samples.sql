-- Whether the connection has a samples view (views.connect makes one only when files exist).
SELECT count(*) > 0 AS has_samples
FROM information_schema.tables
WHERE table_name = 'samples';
