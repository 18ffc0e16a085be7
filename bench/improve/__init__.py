"""`wm-improve`: a world model that learns from its own plans (issue 29, item 1).

    wm-improve checkpoint=checkpoints/cube_lewm data=data/ogbench_cube_train.h5 \
        val_data=data/ogbench_cube_val.h5 out_dir=runs/improve_cube rounds=3

A broad planner over a learned model finds the actions whose outcome the model never saw and
exploits them (a grasp that misses, imagined as one that holds). Data that is merely noisier
does not cover them: they are, by construction, what *our* planner proposes. So each round
trains on what the planner visits (PlaNet, Dreamer, TD-MPC2; "Online World Modeling", arXiv
2512.09929). Round r, from round r-1's checkpoint (round 0: `checkpoint`, only validated):

1. act: the checkpoint's agent, with its recommended planner, acts on protocol=dataset starts
   of the *training* data (start = a recorded state, goal = the frame `goal_offset` steps
   later, `budget` steps: the anchors' protocol, bench/anchors.py) with Gaussian noise on the
   executed actions; every episode is recorded with its simulator states;
2. hard negatives: from the first `negative_starts` of those starts, plain CEM over the model;
   its `num_negatives` lowest-energy candidates that lie apart are executed open loop (then the
   agent goes on to the budget) and recorded: imagined success, real failure. The plan
   diagnosis runs on CEM's own candidates: Spearman between imagined energy and real final
   distance, the imagined favourite's real distance vs the real favourite's, how often the
   imagined favourite fails (bench/improve/negatives.py);
3. fine-tune: the world model continues its own recipe on the original + aggregated data, the
   encoder at `encoder_lr_scale` x the rate; its action head, if any, is retrained on the new
   latents; the checkpoint is out_dir/round_<r>/ (bench/improve/finetune.py);
4. validate: closed-loop success on `val_data` with a 95 % Wilson interval. `val_data` is a set
   recorded with wm-collect at seeds nothing else uses, never a bench held-out set;
5. log: TensorBoard (out_dir/tb), rounds.json, one summary line.

Files in out_dir: aggregated.h5 (the collectors' HDF5 layout; env and contract those of the
training data, refused otherwise), rounds.json (settings and per-round figures, written
atomically), round_<r>/ (checkpoints), work/round_<r>/ (wm-train's run folders), tb/. A killed
run resumes with the same command (only `rounds` may change): finished phases are skipped,
recorded episodes kept, a fine-tune resumes from its checkpoint (bench/improve/rounds.py).

Modules: config (ImproveConfig <-> configs/improve.yaml), task (inputs and their checks),
episodes (recording, aggregated.h5), negatives, finetune, rounds (the loop and its logs), app
(the command).
"""
