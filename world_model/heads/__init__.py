"""Optional learned modules that travel inside a checkpoint directory beside the world model
(`extra.<key>` in its config.json): the reachability head."""
