-- The adaptive cells' per-problem estimates join the others in est_per_problem, so the means,
-- the bootstrap over problems and the per-problem rows treat them like any method.
INSERT INTO est_per_problem
SELECT cell, pid, estimate, tokens, policy_flops, reward_flops
FROM est_adaptive;
