"""rtdi's guardrails: rules over a stack's resources, run by ``rtdi check`` and by
``pulumi preview --policy-pack policies``.

Layout:

* ``policies/view.py``: one normalized view of a stack's resources, built either from a Pulumi
  policy pack's ``StackValidationArgs`` or from an offline plan's ``resources.json``.
* ``policies/engine.py``: the rule base class and the evaluator (per-stack and cross-stack).
* ``policies/rules/``: one rule per module, each with its metadata and parameters.
* ``policies/config.py``: policy configuration (the ``--policy-pack-config`` format), defaults
  from the rules.
* ``policies/pack.py``: the rules as pulumi_policy ``StackValidationPolicy`` objects.
* ``policies/__main__.py``: the only place that constructs a ``PolicyPack`` (which starts a
  server and blocks).

Importing any module here, except ``__main__``, has no side effects.
"""
