"""`python -m workbench run RECIPE`: the command line (see `workbench.pipeline.cli`)."""

import sys

from .pipeline.cli import main

sys.exit(main())
