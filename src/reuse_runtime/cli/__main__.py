# PYTHON_ARGCOMPLETE_OK
"""``python -m reuse_runtime.cli``: the `reuse-runtime` command."""

import sys

from reuse_runtime.cli import main

sys.exit(main())
