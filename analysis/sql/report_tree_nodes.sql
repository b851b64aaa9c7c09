-- The nodes of one search tree, parents before children (node ids grow as the search adds
-- them, so a cut at $limit rows keeps the tree connected).
SELECT node_id, parent_id, depth, step, tokens, score, terminal, finish, answer, correct, visits, value
FROM nodes
WHERE tree_id = $tree_id
ORDER BY node_id
LIMIT $limit;
