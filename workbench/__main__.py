"""`python -m workbench run RECIPE`: the command line (see `workbench.cli`)."""

import sys

from .cli import main

sys.exit(main())
