"""One line per named error for the ``wm-*`` commands, the traceback behind HYDRA_FULL_ERROR=1.

Hydra prints a (trimmed) traceback for any exception a task raises. For the errors this
project raises on purpose, each naming the file, field or step and what to do, that buries the
one line that matters under thirty. `one_line_errors` prints that line and exits with status 1;
``HYDRA_FULL_ERROR=1`` (Hydra's own switch) shows the full traceback as before. Bugs (a
TypeError, an AttributeError...) keep their traceback.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

NAMED_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, FloatingPointError)
"""What the project raises by name: ValueError (config, dataset, checkpoint and contract
errors), OSError (missing files, DiskFullError, an unwritable output), FloatingPointError
(NonFiniteTrainingError)."""

Task = TypeVar("Task", bound=Callable[..., Any])


def one_line_errors(command: str) -> Callable[[Task], Task]:
    """Decorate a Hydra task (under ``@hydra.main``): a `NAMED_ERRORS` exception becomes
    ``<command>: error: <message>`` on stderr and exit status 1."""

    def wrap(task: Task) -> Task:
        @functools.wraps(task)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return task(*args, **kwargs)
            except NAMED_ERRORS as err:
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                print(f"{command}: error: {err}", file=sys.stderr)
                sys.exit(1)

        return run  # type: ignore[return-value]

    return wrap
