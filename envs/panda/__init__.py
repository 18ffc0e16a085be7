"""The Franka Panda tabletop tasks (``wm/PandaReach-v0``, ``wm/PandaPush-v0``,
``wm/PandaPickPlace-v0``): the scene (``model``), the IK controller (``controller``), the env
(``env``) and its task variants (``tasks``)."""
