"""`auxip`: the operator command line. `app` holds every command; each group of subcommands is a module here
(`products`, `sources`, `backup`), with what they share in `common`."""

from auxip.cli.app import app, main

__all__ = ["app", "main"]
