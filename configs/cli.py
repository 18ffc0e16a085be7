"""One line per named error for the ``wm-*`` commands, the traceback behind HYDRA_FULL_ERROR=1.

Hydra prints a (trimmed) traceback for any exception a task raises. For the errors this
project raises on purpose, each naming the file, field or step and what to do, that buries the
one line that matters under thirty. `one_line_errors` prints that line and exits with status 1;
``HYDRA_FULL_ERROR=1`` (Hydra's own switch) shows the full traceback as before. Bugs (a
TypeError, an AttributeError...) keep their traceback. It also refuses a config key no schema
declares (`check_known_keys`): a ``+key=value`` override that nothing would read.

Errors Hydra meets before the task runs (a value of the wrong type, a malformed override, an
unknown group option) it prints itself in 5-12 lines; `one_line_hydra_errors`, put above
``@hydra.main``, prints them as one line naming the override and the key.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from configs.schema import check_known_keys

NAMED_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, FloatingPointError)
"""What the project raises by name: ValueError (config, dataset, checkpoint and contract
errors), OSError (missing files, DiskFullError, an unwritable output), FloatingPointError
(NonFiniteTrainingError)."""

Task = TypeVar("Task", bound=Callable[..., Any])


def one_line(err: BaseException) -> str:
    """`err`'s message on one line. OmegaConf's errors (a wrong type, a missing value) add
    `full_key: ...` and `object_type=...` lines: the key goes in front instead; Hydra's compose
    errors ("Error merging override x=1") get their OmegaConf cause appended."""
    text = str(err).strip()
    if isinstance(err, OmegaConfBaseException):
        first = text.splitlines()[0] if text else type(err).__name__
        key = getattr(err, "full_key", None)
        return f"{key}: {first}" if key else first
    if isinstance(err, HydraException):
        text = " ".join(line.strip() for line in text.splitlines() if line.strip())
        if isinstance(err.__cause__, OmegaConfBaseException):
            return f"{text}: {one_line(err.__cause__)}"
    return text


_forced: list[bool] = []
"""Non-empty while `one_line_hydra_errors` has set HYDRA_FULL_ERROR=1 (which makes Hydra raise
its errors): the task under it still prints its named errors as one line."""


def _full_error() -> bool:
    """Did the user ask for tracebacks (HYDRA_FULL_ERROR=1)?"""
    return os.environ.get("HYDRA_FULL_ERROR") == "1" and not _forced


def _exit_with(command: str, err: BaseException) -> None:
    print(f"{command}: error: {one_line(err)}", file=sys.stderr)
    sys.exit(1)


def one_line_errors(command: str) -> Callable[[Task], Task]:
    """Decorate a Hydra task (under ``@hydra.main``): its config is checked for keys no schema
    declares, and a `NAMED_ERRORS` exception becomes ``<command>: error: <message>`` on stderr
    and exit status 1."""

    def wrap(task: Task) -> Task:
        @functools.wraps(task)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                for cfg in args:
                    if isinstance(cfg, DictConfig):
                        check_known_keys(cfg)
                return task(*args, **kwargs)
            except NAMED_ERRORS as err:
                if _full_error():
                    raise
                _exit_with(command, err)

        return run  # type: ignore[return-value]

    return wrap


def one_line_hydra_errors(command: str) -> Callable[[Task], Task]:
    """Decorate the ``@hydra.main`` function (above it): Hydra's own errors, and the task's
    named errors, become ``<command>: error: <message>`` and exit status 1.

    Hydra prints its errors itself unless HYDRA_FULL_ERROR=1, when it raises them; so this
    sets that switch for the call and prints the one line. A user who set it gets Hydra's
    behaviour untouched; a bug keeps its (untrimmed) traceback."""

    def wrap(main: Task) -> Task:
        @functools.wraps(main)
        def run(*args: Any, **kwargs: Any) -> Any:
            if _full_error():
                return main(*args, **kwargs)
            os.environ["HYDRA_FULL_ERROR"] = "1"
            _forced.append(True)
            try:
                return main(*args, **kwargs)
            except (HydraException, OmegaConfBaseException, *NAMED_ERRORS) as err:
                _exit_with(command, err)
            finally:
                _forced.pop()
                os.environ.pop("HYDRA_FULL_ERROR", None)

        return run  # type: ignore[return-value]

    return wrap
