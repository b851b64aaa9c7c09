-- The runs recorded in manifest.json, oldest first; current: the run the other views read.
CREATE OR REPLACE TABLE runs AS
SELECT r.run_id, r.started, r.finished, r.shards, r.shards_failed, r.current
FROM (SELECT unnest($runs::STRUCT(run_id VARCHAR, started VARCHAR, finished VARCHAR, shards BIGINT,
                                   shards_failed BIGINT, current BOOLEAN)[], recursive := true)) r;
