"""Entry point: `python -m hfwizard.sandbox.emulator` runs an emulated cluster in this process."""

import sys

from hfwizard.sandbox.emulator.cli import main

if __name__ == "__main__":  # importing the module (as the import-hygiene test does) must not serve
    sys.exit(main())
