-- The adaptive replay's per-problem estimates (temporary): one row per (adaptive cell, problem)
-- from est_adaptive_hits (analysis/adaptive.py, means over the replayed orderings): estimate
-- (accuracy), samples (draws spent), tokens, and cost by the FLOPs rule (flops.sql): the prompt
-- once plus the drawn samples' policy FLOPs; their reward FLOPs where the cell pays for the
-- reward model.
CREATE OR REPLACE TEMP TABLE est_adaptive AS
SELECT c.cell, h.pid, h.estimate, h.samples, h.tokens,
       p.prompt_flops + h.policy_flops AS policy_flops,
       CASE WHEN c.pays_reward THEN h.reward_flops ELSE 0.0 END AS reward_flops
FROM est_adaptive_hits h
JOIN est_problems p USING (pid)
JOIN est_cells c ON c.gid = p.gid AND c.method = h.method AND c.n = p.samples;
