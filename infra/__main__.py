"""Entry point for ``pulumi up``: Pulumi.yaml points `main` at this folder."""

import sys
from pathlib import Path

import pulumi

# Pulumi runs this folder as a script; make `infra` importable as the package it is.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.program import main

pulumi.run(main)
