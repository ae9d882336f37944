"""``python -m hpo_prune.search``: see ``cli``."""
import sys

from .cli import main

sys.exit(main())
