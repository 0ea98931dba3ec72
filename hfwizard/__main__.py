"""`python -m hfwizard` runs the same CLI as the `hfwizard` command."""

from hfwizard.frontends.cli import main

main()
