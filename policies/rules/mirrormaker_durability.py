"""Durability: MirrorMaker 2 keeps its internal topics replicated and consumer offsets in sync."""

from __future__ import annotations

from collections.abc import Mapping

from policies.engine import Context, Rule
from policies.rules._common import mirror_makers, mm2_sources, mm2_target
from policies.rules._durability import MIN_RF
from policies.view import as_bool, as_int, dig, items, show

_TARGET_KEYS = (
    "config.storage.replication.factor",
    "offset.storage.replication.factor",
    "status.storage.replication.factor",
)
_SOURCE_KEYS = ("replication.factor", "offset-syncs.topic.replication.factor")
_CHECKPOINT_RF = "checkpoints.topic.replication.factor"
_CHECKPOINT_FLAGS = ("sync.group.offsets.enabled", "emit.checkpoints.enabled")


class MirrorMakerDurability(Rule):
    id = "mirrormaker-durability"
    category = "durability"
    description = (
        "Every KafkaMirrorMaker2 sets its internal topics' replication factor to at least "
        "minReplicationFactor (Connect config/offset/status storage on the target; "
        "replication.factor and offset-syncs.topic.replication.factor of each source connector; "
        "checkpoints.topic.replication.factor) and syncs consumer offsets "
        "(sync.group.offsets.enabled and emit.checkpoints.enabled true on each checkpoint "
        "connector). Settings must be explicit: upstream defaults differ (the source connector's "
        "replication.factor defaults to 2)."
    )
    why = (
        "Losing MirrorMaker's offset or checkpoint topics restarts replication from scratch or "
        "skips data; without offset sync, consumers failing over to another region's aggregate "
        "restart from the wrong position."
    )
    severity = "high"
    params = (MIN_RF,)

    def check(self, ctx: Context) -> None:
        need = ctx["minReplicationFactor"]
        for mm2 in mirror_makers(ctx.view):
            with ctx.guard(mm2):
                _, target = mm2_target(mm2)
                target_config = dig(target, "config") or {}
                for key in _TARGET_KEYS:
                    self._rf(ctx, mm2, f"spec.target.config.{key}", _get(target_config, key), need)
                mirrors = items(dig(mm2.props, "spec", "mirrors"))
                aliases = [alias for alias, _ in mm2_sources(mm2)]
                for i, mirror in enumerate(mirrors):
                    name = aliases[i] if i < len(aliases) and aliases[i] else f"mirrors[{i}]"
                    source = dig(mirror, "sourceConnector", "config") or {}
                    for key in _SOURCE_KEYS:
                        self._rf(
                            ctx,
                            mm2,
                            f"mirror {name}: sourceConnector.config.{key}",
                            _get(source, key),
                            need,
                        )
                    checkpoint = dig(mirror, "checkpointConnector")
                    if checkpoint is None:
                        ctx.report(
                            mm2,
                            f"mirror {name} has no checkpointConnector: consumer offsets are not "
                            "translated; add one with sync.group.offsets.enabled and "
                            "emit.checkpoints.enabled true",
                        )
                        continue
                    cconfig = dig(checkpoint, "config") or {}
                    self._rf(
                        ctx,
                        mm2,
                        f"mirror {name}: checkpointConnector.config.{_CHECKPOINT_RF}",
                        _get(cconfig, _CHECKPOINT_RF),
                        need,
                    )
                    for flag in _CHECKPOINT_FLAGS:
                        value = _get(cconfig, flag)
                        if as_bool(value) is not True:
                            shown = show(value) if value is not None else "unset"
                            ctx.report(
                                mm2,
                                f"mirror {name}: checkpointConnector.config.{flag} is {shown}; "
                                "set it to true so consumer offsets follow the data",
                            )

    @staticmethod
    def _rf(ctx: Context, mm2, where: str, raw, need: int) -> None:
        value = as_int(raw)
        if value is None or value < need:
            shown = "unset" if raw is None else show(raw)
            ctx.report(mm2, f"{where} is {shown}; set it to at least {need}")


def _get(config, key):
    """A setting (None if unset); an unknown value raises: the guard skips the object, no guess."""
    return config.get(key) if isinstance(config, Mapping) else None


RULE = MirrorMakerDurability()
