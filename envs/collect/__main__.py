"""``python -m envs.collect ...`` runs ``wm-collect`` (envs/collect/app.py)."""

from envs.collect.app import main

if __name__ == "__main__":  # spawned collect workers re-import this file as __mp_main__
    main()
