"""Tree-search building blocks shared by the tree-search strategies (beam search, REBASE, MCTS) (pure logic, no engine)."""
