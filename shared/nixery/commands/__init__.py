"""The ``nixery`` subcommands, one module each; :mod:`nixery.cli` wires them."""
