"""``python -m hpo_prune.export``: see ``cli``."""
import sys

from .cli import main

sys.exit(main())
