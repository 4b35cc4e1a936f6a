"""Entry point for ``pulumi up``: the project root is the program directory (Pulumi.yaml sets no
``main``), because Pulumi's pip toolchain looks for ``requirements.txt`` in the program directory
and runs pip there; with ``main: infra/`` ``pulumi install`` found nothing and left ``.venv`` empty.

Pulumi runs this folder with ``runpy.run_path``, which puts it first on ``sys.path``: ``infra`` is
imported from this checkout, not installed into ``.venv`` (the locked ``requirements.txt`` is in
pip's hash-checking mode, which refuses ``-e .``).
"""

import pulumi

from infra.program import main

pulumi.run(main)
