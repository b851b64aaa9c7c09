-- The per-problem estimates the bootstrap over problems reweights: dataset (did), cell, the
-- problem's number within its dataset (qid) and its estimate. Unordered.
SELECT p.did, e.cell, p.qid, e.estimate
FROM est_per_problem e
JOIN est_problems p USING (pid);
