"""The networks: the frozen or end-to-end encoders, the V-JEPA 2-AC predictor and `WorldModel`,
which ties them into `encode`, `rollout` and `energy` (what the planner calls)."""
