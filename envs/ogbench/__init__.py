"""OGBench's ``visual-cube-single`` scene behind the wm/* interface (``wm/OGBenchCube-v0``):
the env (``cube``), a fast primitive renderer (``render``) and OGBench's scripted oracles as
behaviour policies (``oracle``)."""
