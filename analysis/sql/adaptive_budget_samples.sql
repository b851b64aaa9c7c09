-- Samples drawn per problem by the groups with a budget (a tree search's leaves, the live adaptive
-- strategy's draws up to n_max), named as the accuracy rows are: their n is the budget.
SELECT model, dataset, strategy, budget::BIGINT AS n, problem_id, samples::DOUBLE AS samples
FROM est_problems
WHERE tree;
