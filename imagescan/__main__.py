"""`python -m imagescan`."""

import sys

from imagescan.cli import main

sys.exit(main())
