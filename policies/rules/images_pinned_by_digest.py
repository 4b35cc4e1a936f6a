"""Supply chain: every container image rtdi declares is pinned by digest."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policies.engine import Context, Rule
from policies.rules._common import STRIMZI
from policies.view import dig, is_list, text

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
DIGEST = "@sha256:"
# Strimzi resources whose main image the operator picks (by tag) when the resource names none.
STRIMZI_IMAGE_PATHS = {
    "Kafka": ("spec", "kafka", "image"),
    "KafkaMirrorMaker2": ("spec", "image"),
    "KafkaConnect": ("spec", "image"),
    "KafkaBridge": ("spec", "image"),
}
SKIPPED_KINDS = ("ConfigMap", "Secret", "CustomResourceDefinition")


class ImagesPinnedByDigest(Rule):
    id = "images-pinned-by-digest"
    category = "supply chain"
    description = (
        "Every container image is pinned by @sha256: digest: each string under an `image` key in "
        "a Kubernetes object's spec (pod templates of Deployments, StatefulSets, Jobs..., "
        "Strimzi spec.image, spec.kafka.image and component images, Flink spec.image); Strimzi "
        "Kafka, KafkaMirrorMaker2, KafkaConnect and KafkaBridge name their image (otherwise the "
        "operator's tag is used); in a Helm release's values every `image` string carries a "
        "digest and every `image` mapping sets `digest` (or a tag holding one), and a release "
        "that sets no image runs the chart's default tags."
    )
    why = (
        "A tag can be moved to other content at any time: the same plan then deploys different "
        "code in each region and on each restart, and a compromised registry account ships "
        "straight into the brokers."
    )
    severity = "medium"
    enforcement = "advisory"

    def check(self, ctx: Context) -> None:
        for obj in ctx.view.resources:
            if obj.package != "kubernetes" or obj.type == HELM_RELEASE:
                continue
            if obj.k8s_kind in SKIPPED_KINDS:
                continue
            with ctx.guard(obj):
                name = obj.k8s_name or obj.name
                unpinned = [i for _, i in _images(dig(obj.props, "spec")) if DIGEST not in i]
                for image in unpinned:
                    ctx.report(
                        obj,
                        f"{obj.k8s_kind} {name}: image {image!r} is not pinned by digest; "
                        "append @sha256:<digest>",
                    )
                path = STRIMZI_IMAGE_PATHS.get(obj.k8s_kind or "")
                if obj.k8s_group == STRIMZI and path and not text(dig(obj.props, *path)):
                    ctx.report(
                        obj,
                        f"{obj.k8s_kind} {name} sets no {'.'.join(path)}, so the operator runs "
                        "its default image by tag; set it to an image pinned by @sha256: digest",
                    )
        for release in ctx.view.of_type(HELM_RELEASE):
            with ctx.guard(release):
                chart = text(dig(release.props, "chart")) or release.name
                found = list(_helm_images(dig(release.props, "values")))
                if not found:
                    ctx.report(
                        release,
                        f"Helm release {chart} sets no image in its values, so the chart's "
                        "default images run by tag; set each image's digest",
                    )
                for where, ref in found:
                    if ref is None:
                        ctx.report(
                            release,
                            f"Helm release {chart}: values {where} has no digest; set "
                            f"{where}.digest to the image's sha256 digest",
                        )
                    elif DIGEST not in ref and not ref.startswith("sha256:"):
                        ctx.report(
                            release,
                            f"Helm release {chart}: values {where} = {ref!r} is not pinned by "
                            "digest; append @sha256:<digest>",
                        )


def _images(value: Any, path: str = "spec") -> Iterator[tuple[str, str]]:
    """(path, image) for every string under an ``image`` key."""
    if isinstance(value, Mapping):
        for key in value:
            child = value.get(key)
            if key == "image" and isinstance(child, str):
                yield f"{path}.image", child
            else:
                yield from _images(child, f"{path}.{key}")
    elif is_list(value):
        for i in range(len(value)):
            yield from _images(value[i], f"{path}[{i}]")


def _helm_images(value: Any, path: str = "values") -> Iterator[tuple[str, str | None]]:
    """(path, reference or digest, None when an image mapping has neither) per ``image`` key."""
    if isinstance(value, Mapping):
        for key in value:
            child = value.get(key)
            where = f"{path}.{key}"
            if key == "image" and isinstance(child, str):
                yield where, child
            elif key == "image" and isinstance(child, Mapping):
                digest = text(child.get("digest"))
                tag = text(child.get("tag")) or ""
                yield where, digest or (tag if "sha256:" in tag else None)
            else:
                yield from _helm_images(child, where)
    elif is_list(value):
        for i in range(len(value)):
            yield from _helm_images(value[i], f"{path}[{i}]")


RULE = ImagesPinnedByDigest()
