"""``python -m components.settings [--check]``: regenerate (or check) the views of the schema."""

import sys

from .schema import main

sys.exit(main())
