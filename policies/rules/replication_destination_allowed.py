"""Data placement: replication flows only reach regions allowed for the data classes they carry."""

from __future__ import annotations

from policies.engine import Context, Rule
from policies.rules._common import (
    DATA_CLASSES,
    FALLBACK_TO_PUBLISHED,
    MSK_REPLICATOR,
    S3_BUCKETS,
    S3_REPLICATION,
    class_jurisdictions,
    csv,
    mirror_makers,
    mm2_target,
    region_jurisdiction,
    unknown_class,
)
from policies.view import (
    ANNOTATION_DATA_CLASSES,
    LABEL_REGION,
    Resource,
    StackView,
    dig,
    identifiers,
    items,
    jurisdiction_of,
    location,
    references,
    text,
)


class ReplicationDestinationAllowed(Rule):
    id = "replication-destination-allowed"
    category = "data placement"
    description = (
        "Every replication flow reaches only regions whose jurisdiction the data classes it "
        "carries allow: Strimzi KafkaMirrorMaker2 (data classes in its rtdi-data-classes "
        "annotation, destination its rtdi-region), MSK Replicators (rtdi-data-classes tag, "
        "destination their region) and S3 bucket replication (the source bucket's "
        "rtdi-data-classes tag, destination the target bucket's region)."
    )
    why = (
        "Replication copies every record to the destination: one mirror from an EU region into a "
        "US aggregate cluster moves EU-only data out of the EU, however carefully the topics were "
        "placed."
    )
    severity = "critical"
    params = (DATA_CLASSES, FALLBACK_TO_PUBLISHED)

    def check(self, ctx: Context) -> None:
        view = ctx.view
        for mm2 in mirror_makers(view):
            with ctx.guard(mm2):
                if ANNOTATION_DATA_CLASSES not in mm2.annotations:
                    ctx.report(
                        mm2,
                        f"declares no data classes; annotate it {ANNOTATION_DATA_CLASSES}: "
                        "<class>,... with the classes of the topics its topicsPattern selects",
                    )
                    continue
                region_id = mm2.labels.get(LABEL_REGION) or mm2_target(mm2)[0] or view.region_id
                self._flow(
                    ctx,
                    mm2,
                    csv(mm2.annotations[ANNOTATION_DATA_CLASSES]),
                    region_id,
                    region_jurisdiction(view, region_id, mm2),
                )
        for rep in view.of_type(MSK_REPLICATOR):
            with ctx.guard(rep):
                if ANNOTATION_DATA_CLASSES not in rep.labels:
                    ctx.report(
                        rep,
                        f"declares no data classes; tag it {ANNOTATION_DATA_CLASSES}: <class>,...",
                    )
                    continue
                where = location(rep)
                region_id = f"{where[0]}-{where[1]}" if where else None
                self._flow(
                    ctx,
                    rep,
                    csv(rep.labels[ANNOTATION_DATA_CLASSES]),
                    region_id,
                    jurisdiction_of(rep, view),
                )
        for config in view.of_type(S3_REPLICATION):
            with ctx.guard(config):
                self._s3(ctx, config)

    def _flow(
        self,
        ctx: Context,
        r: Resource,
        classes: list[str],
        region_id: str | None,
        jurisdiction: str | None,
    ) -> None:
        if jurisdiction is None:
            ctx.report(
                r,
                f"cannot tell the jurisdiction of destination region {region_id}; label it "
                "rtdi-region and rtdi-jurisdiction or make sure the stack reads the global "
                "topology",
            )
            return
        for data_class in classes:
            allowed = class_jurisdictions(ctx.view, ctx.params, data_class)
            if allowed is None:
                ctx.report(r, unknown_class(ctx.view, self.id, data_class))
            elif jurisdiction not in allowed:
                ctx.report(
                    r,
                    f"replicates data class {data_class!r} into {region_id} (jurisdiction "
                    f"{jurisdiction!r}); {data_class!r} may only go to {', '.join(allowed)}: drop "
                    "its topics from this flow",
                )

    def _s3(self, ctx: Context, config: Resource) -> None:
        view = ctx.view
        source = next(
            (b for b in view.of_type(*S3_BUCKETS) if references(config, "bucket", b)), None
        )
        classes = csv(source.labels.get(ANNOTATION_DATA_CLASSES)) if source else []
        if source is None or ANNOTATION_DATA_CLASSES not in source.labels:
            ctx.report(
                config,
                f"replicates a bucket that declares no data classes; tag the source bucket "
                f"{ANNOTATION_DATA_CLASSES}: <class>,...",
            )
            return
        for rule in items(dig(config.props, "rules")):
            if dig(rule, "status") == "Disabled":
                continue
            arn = text(dig(rule, "destination", "bucket"))
            if not arn:
                continue
            region_id, jurisdiction = _bucket_place(view, arn)
            if jurisdiction is None:
                ctx.report(
                    config,
                    f"replicates to {arn}, whose region is unknown: declare that bucket in a stack "
                    f"checked together with this one, or name it <topology>-<region id>-<purpose>",
                )
                continue
            self._flow(ctx, config, classes, region_id, jurisdiction)


def _bucket_place(view: StackView, arn: str) -> tuple[str | None, str | None]:
    name = arn.removeprefix("arn:aws:s3:::")
    for b in view.everywhere():
        if b.type in S3_BUCKETS and (name in identifiers(b) or arn in identifiers(b)):
            where = location(b)
            region_id = f"{where[0]}-{where[1]}" if where else None
            return region_id, jurisdiction_of(b, view)
    topology = view.topology or {}
    for region in topology.get("regions") or []:
        region_id = f"{region.get('cloud')}-{region.get('name')}"
        if name.startswith(f"{topology.get('name')}-{region_id}-"):
            return region_id, region.get("jurisdiction")
    return None, None


RULE = ReplicationDestinationAllowed()
