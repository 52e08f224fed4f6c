"""The product's command line, ``lakehouse`` (console script ``bioprocess_cli.main:main``).

The top of the dependency graph: it may import every package (``orchestration``, ``assets``,
``lakehouse``, ``ml``, ``twin``) and nothing imports it. Subcommands are registered explicitly
in :func:`bioprocess_cli.main.build_parser`; each handler imports its heavy modules only when
it runs, so ``lakehouse --help`` stays fast.
"""
