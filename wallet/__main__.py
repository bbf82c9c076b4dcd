"""``python -m wallet …``: the command line."""

from wallet.entrypoints.cli import main

main()
