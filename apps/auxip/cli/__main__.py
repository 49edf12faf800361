"""`python -m auxip.cli`: the same as the `auxip` command."""

from auxip.cli.app import main

main()
