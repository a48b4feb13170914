"""`python -m hfr.cli ...` (and `torchrun -m hfr.cli ...`): the `hfr` command."""

import sys

from hfr.cli import main

sys.exit(main())
