"""Data placement: replication flows only reach regions allowed for the data classes they carry."""

from __future__ import annotations

from policies.engine import Context, Rule
from policies.rules._common import (
    DATA_CLASSES,
    FALLBACK_TO_PUBLISHED,
    MSK_REPLICATOR,
    S3_BUCKETS,
    S3_REPLICATION,
    arn_region,
    class_jurisdictions,
    cluster_region,
    csv,
    label_disagrees,
    mirror_makers,
    mm2_target,
    names_in_region,
    region_ids,
    region_of,
    unknown_class,
)
from policies.rules._javaregex import (
    DEFAULT_EXCLUDE,
    Untranslatable,
    compile_filter,
    full_match,
    split_list,
)
from policies.view import (
    ANNOTATION_DATA_CLASSES,
    LABEL_REGION,
    Resource,
    StackView,
    dig,
    identifiers,
    items,
    location,
    references,
    text,
)


class ReplicationDestinationAllowed(Rule):
    id = "replication-destination-allowed"
    category = "data placement"
    description = (
        "Every replication flow reaches only regions whose jurisdiction the data classes it "
        "carries allow. What a Strimzi KafkaMirrorMaker2 mirror or an MSK Replicator carries is "
        "found by matching its topic filter (topicsPattern / topicsToReplicate, minus the "
        "excludes) as Kafka does (java.util.regex, full match, comma-separated list) against "
        "the topology's topics in the source region (source bootstrap, else alias); the "
        "destination is the target cluster's region. S3 bucket replication: every class the "
        "source bucket's region may hold (its rtdi-data-classes tag is not trusted), destination "
        "the target bucket's region. An rtdi-data-classes annotation or tag that disagrees with "
        "what a mirror carries is a violation."
    )
    why = (
        "Replication copies every record to the destination: one mirror from an EU region into a "
        "US aggregate cluster moves EU-only data out of the EU, however carefully the topics were "
        "placed, and a widened pattern moves it whatever the mirror's annotation says."
    )
    severity = "critical"
    params = (DATA_CLASSES, FALLBACK_TO_PUBLISHED)

    def check(self, ctx: Context) -> None:
        view = ctx.view
        for mm2 in mirror_makers(view):
            with ctx.guard(mm2):
                self._mm2(ctx, mm2)
        for rep in view.of_type(MSK_REPLICATOR):
            with ctx.guard(rep):
                self._replicator(ctx, rep)
        for config in view.of_type(S3_REPLICATION):
            with ctx.guard(config):
                self._s3(ctx, config)

    def _mm2(self, ctx: Context, mm2: Resource) -> None:
        view = ctx.view
        alias, target = mm2_target(mm2)
        region_id = (
            cluster_region(view, text(dig(target, "bootstrapServers")))
            or _known_region(view, alias)
            or view.region_id
        )
        lie = label_disagrees(mm2, LABEL_REGION, region_id)
        if lie:
            ctx.report(mm2, f"writes to {region_id} but {lie}")
        if not self._topology(ctx, mm2):
            return
        carried: dict[str, str] = {}
        for mirror in items(dig(mm2.props, "spec", "mirrors")):
            source_alias, source = _mirror_source(mm2, mirror)
            source_region = cluster_region(
                view, text(dig(source, "bootstrapServers"))
            ) or _known_region(view, source_alias)
            include = text(dig(mirror, "topicsPattern")) or ""
            exclude = text(dig(mirror, "topicsExcludePattern"))
            if exclude is None:
                exclude = text(dig(mirror, "sourceConnector", "config", "topics.exclude"))
            found = self._carried(
                ctx,
                mm2,
                text(dig(source, "bootstrapServers")),
                split_list(include),
                split_list(DEFAULT_EXCLUDE if exclude is None else exclude),
                source_region,
            )
            if found is None:
                return
            carried.update(found)
        self._claims(ctx, mm2, mm2.annotations.get(ANNOTATION_DATA_CLASSES), carried)
        self._flow(ctx, mm2, carried, region_id, view.jurisdiction_of_region(region_id))

    def _replicator(self, ctx: Context, rep: Resource) -> None:
        view = ctx.view
        region_id = region_of(view, rep)
        if not self._topology(ctx, rep):
            return
        carried: dict[str, str] = {}
        for info in items(dig(rep.props, "replicationInfoList")):
            source_region = arn_region(view, text(dig(info, "sourceKafkaClusterArn")))
            for replication in items(dig(info, "topicReplications")):
                include = [
                    t for t in items(dig(replication, "topicsToReplicates")) if isinstance(t, str)
                ]
                exclude = [
                    t for t in items(dig(replication, "topicsToExcludes")) if isinstance(t, str)
                ]
                found = self._carried(
                    ctx,
                    rep,
                    text(dig(info, "sourceKafkaClusterArn")),
                    include,
                    exclude,
                    source_region,
                )
                if found is None:
                    return
                carried.update(found)
        self._claims(ctx, rep, rep.labels.get(ANNOTATION_DATA_CLASSES), carried)
        self._flow(ctx, rep, carried, region_id, view.jurisdiction_of_region(region_id))

    def _topology(self, ctx: Context, r: Resource) -> bool:
        if ctx.view.published is not None:
            return True
        ctx.report(
            r,
            "cannot tell which topics this flow carries: the global topology is not available "
            "(check this stack together with its global stack's plan or outputs)",
        )
        return False

    def _carried(
        self,
        ctx: Context,
        r: Resource,
        source: str | None,
        include: list[str],
        exclude: list[str],
        source_region: str | None,
    ) -> dict[str, str] | None:
        """Topic name -> data class of the source region's topics the filter lets through; None
        (reported) when a pattern cannot be read as Kafka reads it. A source whose address names
        a regional cluster holds no mirrored ``<region>.<topic>`` copies; any other may."""
        try:
            wanted, unwanted = compile_filter(include), compile_filter(exclude)
        except Untranslatable as exc:
            ctx.report(
                r,
                f"topic filter {', '.join(include)!r} (excluding {', '.join(exclude)!r}) cannot "
                f"be read as Kafka reads it (java.util.regex, full match): it {exc}; write it "
                "with plain names, '|', '.', '*', classes and groups",
            )
            return None
        return {
            name: data_class
            for name, data_class in names_in_region(
                ctx.view, source_region, "regional" not in (source or "")
            ).items()
            if full_match(wanted, name) and not full_match(unwanted, name)
        }

    def _claims(
        self, ctx: Context, r: Resource, claimed: str | None, carried: dict[str, str]
    ) -> None:
        if claimed is None:
            return
        facts = sorted(set(carried.values()))
        if sorted(set(csv(claimed))) != facts:
            ctx.report(
                r,
                f"is labelled {ANNOTATION_DATA_CLASSES}: {claimed!r}, but its topic filter "
                f"carries {', '.join(facts) or 'no data class'}; fix or drop the label",
            )

    def _flow(
        self,
        ctx: Context,
        r: Resource,
        carried: dict[str, str] | list[str],
        region_id: str | None,
        jurisdiction: str | None,
    ) -> None:
        if not carried:
            return
        if jurisdiction is None:
            ctx.report(
                r,
                f"cannot tell the jurisdiction of destination region {region_id}: it is not a "
                "region of the global topology",
            )
            return
        by_class: dict[str, list[str]] = {}
        if isinstance(carried, dict):
            for name, data_class in sorted(carried.items()):
                by_class.setdefault(data_class, []).append(name)
        else:
            by_class = {c: [] for c in carried}
        for data_class, names in sorted(by_class.items()):
            allowed = class_jurisdictions(ctx.view, ctx.params, data_class)
            if allowed is None:
                ctx.report(r, unknown_class(ctx.view, self.id, data_class))
            elif jurisdiction not in allowed:
                more = f" and {len(names) - 3} more" if len(names) > 3 else ""
                shown = f" (topics {', '.join(names[:3])}{more})" if names else ""
                ctx.report(
                    r,
                    f"replicates data class {data_class!r}{shown} into {region_id} (jurisdiction "
                    f"{jurisdiction!r}); {data_class!r} may only go to {', '.join(allowed)}: drop "
                    "its topics from this flow",
                )

    def _s3(self, ctx: Context, config: Resource) -> None:
        view = ctx.view
        source = next(
            (b for b in view.of_type(*S3_BUCKETS) if references(config, "bucket", b)), None
        )
        # What the bucket may hold is what its region may hold (the topology's topics there),
        # not what its rtdi-data-classes tag says: nothing stops a job writing other classes.
        where = location(source) if source is not None else None
        if where is None or not self._topology(ctx, config):
            if where is None:
                ctx.report(
                    config,
                    "replicates a bucket that no checked stack declares (or whose region is "
                    "unknown), so what it holds cannot be told; declare the source bucket here",
                )
            return
        classes = sorted(set(names_in_region(view, f"{where[0]}-{where[1]}").values()))
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


def _known_region(view: StackView, alias: str | None) -> str | None:
    return alias if alias in region_ids(view) else None


def _mirror_source(mm2: Resource, mirror: object) -> tuple[str | None, object]:
    """(alias, connection) of one mirror: Strimzi v1 ``source``, v1beta2 ``sourceCluster``."""
    source = dig(mirror, "source")
    if source is not None:
        return text(dig(source, "alias")), source
    alias = text(dig(mirror, "sourceCluster"))
    clusters = items(dig(mm2.props, "spec", "clusters"))
    return alias, next((c for c in clusters if dig(c, "alias") == alias), None)


def _bucket_place(view: StackView, arn: str) -> tuple[str | None, str | None]:
    name = arn.removeprefix("arn:aws:s3:::")
    for b in view.everywhere():
        if b.type in S3_BUCKETS and (name in identifiers(b) or arn in identifiers(b)):
            where = location(b)
            region_id = f"{where[0]}-{where[1]}" if where else None
            return region_id, view.jurisdiction_of_region(region_id)
    topology = view.topology or {}
    for region in topology.get("regions") or []:
        region_id = f"{region.get('cloud')}-{region.get('name')}"
        if name.startswith(f"{topology.get('name')}-{region_id}-"):
            return region_id, region.get("jurisdiction")
    return None, None


RULE = ReplicationDestinationAllowed()
