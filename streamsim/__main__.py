"""``python -m streamsim`` is the ``streamsim`` command.

``python -m`` puts the current folder first on ``sys.path``, so a ``typer.py``, ``numpy.py`` or
plugin-looking module lying there would be imported in place of the real one — the current folder
is input, not code. The ``streamsim`` console script has no such entry; it is taken out here, before
the command imports anything (the package's own ``__init__`` imports only the standard library's
``importlib`` and ``typing``; ``python -P -m streamsim`` keeps even those safe).
"""

import os
import sys

if not sys.flags.safe_path and sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from streamsim.presentation.cli import app  # noqa: E402 - only once the current folder is off the import path

app()
