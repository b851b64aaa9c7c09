-- The prompts of the samples in view: one row per (model, dataset, problem, prompt), whichever
-- prompts file of the folder holds it (equal prompt ids are equal text).
CREATE OR REPLACE VIEW prompts AS
SELECT DISTINCT ON (p.model, p.dataset, p.problem_id, p.prompt_id) p.*
FROM all_prompts p
SEMI JOIN (SELECT DISTINCT model, prompt_id FROM samples) s
    ON s.model = p.model AND s.prompt_id = p.prompt_id;
