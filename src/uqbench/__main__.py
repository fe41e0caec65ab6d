"""``python -m uqbench`` is the ``uqbench`` command."""

import sys

from uqbench.cli import main

sys.exit(main())
