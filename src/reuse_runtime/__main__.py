# PYTHON_ARGCOMPLETE_OK
import sys

from reuse_runtime.cli import main

sys.exit(main())
