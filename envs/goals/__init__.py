"""Goals: the goal image and state every wm/* env carries (``goal_env``), and goals given as a
simulator state instead (``goal_state``): where a behaviour policy got to (``replay_goal``,
protocol=replay) or a recorded frame k steps ahead (``dataset_goal``, protocol=dataset)."""
