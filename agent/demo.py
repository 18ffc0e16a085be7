"""`wm-demo`: the README's main command; the app lives next to `wm-eval` in agent/eval.py."""

from __future__ import annotations

from agent.eval import demo as main

__all__ = ["main"]

if __name__ == "__main__":
    main()
