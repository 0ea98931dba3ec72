"""`python -m hfwizard` runs the same CLI as the `hfwizard` command."""

from hfwizard.cli import main

main()
