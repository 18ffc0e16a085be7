"""`wm-train` (and `torchrun -m world_model.training.train`); the app lives in world_model/training/apps.py."""

from __future__ import annotations

from world_model.training.apps import train as main

__all__ = ["main"]

if __name__ == "__main__":
    main()
