"""Entry point for ``pulumi preview --policy-pack policies``; the one place that builds the pack.

Pulumi runs this folder as a script (``python -m pulumi.policy <engine> policies``), with the pack
folder first on sys.path. Constructing `PolicyPack` starts the analyzer's gRPC server, prints its
port on stdout and blocks, so nothing may print to stdout before it and nothing after it runs.
"""

import sys
from pathlib import Path

# Make `policies` importable as the package it is: the repository root holds it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import PolicyPack

from policies.pack import PACK_NAME, build_policies

PolicyPack(name=PACK_NAME, policies=build_policies())
