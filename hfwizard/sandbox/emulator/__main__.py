"""Entry point: `python -m hfwizard.sandbox.emulator` runs an emulated cluster in this process."""

import sys

from hfwizard.sandbox.emulator.cli import main

sys.exit(main())
