"""``nixery``: the registry's command line.

====================  =====================================================
``nixery serve``      the embedded registry (:mod:`nixery.commands.serve`)
``nixery build``      one image to an OCI layout (:mod:`nixery.commands.build`)
``nixery prebuild``   build a list of images ahead of their first pull
                      (:mod:`nixery.commands.prebuild`)
``nixery popcount``   popularity data of a channel, as Nixery's popcount
                      (:mod:`nixery.commands.popcount`)
====================  =====================================================

Each subcommand is a module with ``HELP``, ``DESCRIPTION``, ``EXAMPLES``,
``add_arguments`` and ``run``; this module wires them and owns the one
place where failures become output: one line ``nixery: <what went wrong>``
on stderr and an exit code (:mod:`nixery.commands.common` lists them).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from nixery.commands import build, common, popcount, prebuild, serve
from nixery.commands.common import EXIT_CODES_HELP, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE

COMMANDS: dict[str, ModuleType] = {
    "serve": serve,
    "build": build,
    "prebuild": prebuild,
    "popcount": popcount,
}
log = logging.getLogger("nixery")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="nixery",
        description="A Nix-powered container registry: images named by their packages.",
        epilog="examples:\n  nixery serve\n  nixery build shell/hello --oci-layout ./hello\n"
        "  nixery prebuild --from popular.txt\n  nixery <command> --help\n\n" + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument(
        "-v", "--verbose", action="store_true", help="log progress details and tracebacks"
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        command = sub.add_parser(
            name,
            help=module.HELP,
            description=module.DESCRIPTION,
            epilog=module.EXAMPLES + "\n" + EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return top


def _one_line(text: str) -> str:
    return "; ".join(line.strip(" -") for line in str(text).splitlines() if line.strip())


def main(argv: Sequence[str] | None = None) -> int:
    from ocimodel.errors import RegistryError
    from registry.settings import ConfigError

    args = parser().parse_args(argv)
    common.configure_cli_logging(args.verbose)
    try:
        code: int = args.run(args)
    except common.CliError as exc:
        print(f"nixery: {_one_line(str(exc))}", file=sys.stderr)
        return exc.code
    except ConfigError as exc:
        print(f"nixery: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except RegistryError as exc:
        print(f"nixery: {exc.code.name}: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE if exc.code.status < 500 else EXIT_FAILED  # 4xx: the name given
    except KeyboardInterrupt:
        print("nixery: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # never a traceback unless asked for
        if args.verbose:
            log.exception("internal error")
        print(
            f"nixery: internal error: {type(exc).__name__}: {_one_line(str(exc))} "
            "(-v shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return code


if __name__ == "__main__":
    sys.exit(main())
