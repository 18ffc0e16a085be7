"""Everything that fits a world model: the `wm-train` and `wm-pretrain` entry points, their
configs, the latent cache, the V-JEPA 2-AC and LeWM objectives and trainers. Nothing here is
needed to plan with a trained checkpoint."""
