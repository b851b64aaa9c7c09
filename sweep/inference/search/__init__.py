"""Tree-search building blocks shared by the REBASE and MCTS strategies (pure logic, no engine)."""
