-- One search tree per dataset to draw. Of the strategies in $strategies (most preferred first)
-- and the problem $problem (NULL: any problem): the preferred strategy, then a tree whose
-- finished paths hold both a right and a wrong answer (the search had a choice to make), then
-- the largest tree; ties by problem id, model and budget. One row per dataset.
WITH trees AS (
    SELECT dataset, model, strategy, budget, problem_id, tree_id,
           count(*) AS nodes,
           count(*) FILTER (WHERE terminal AND correct) AS right_paths,
           count(*) FILTER (WHERE terminal AND NOT correct) AS wrong_paths
    FROM nodes
    WHERE list_contains($strategies, strategy) AND ($problem IS NULL OR problem_id = $problem)
    GROUP BY ALL
)
SELECT * FROM trees
QUALIFY row_number() OVER (
    PARTITION BY dataset
    ORDER BY list_position($strategies, strategy), (right_paths > 0 AND wrong_paths > 0) DESC,
             nodes DESC, problem_id, model, budget DESC
) = 1
ORDER BY dataset;
