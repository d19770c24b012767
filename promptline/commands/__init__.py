"""Implementations of the ``promptline`` subcommands, one module per command group."""
