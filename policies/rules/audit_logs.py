"""Security: who touched data, networks, brokers and control planes is recorded."""

from __future__ import annotations

from policies.engine import Context, Param, Rule
from policies.rules._common import EKS_CLUSTER, GCS_BUCKET, GKE_CLUSTER, MSK_CLUSTER, S3_BUCKETS
from policies.view import (
    Resource,
    StackView,
    as_bool,
    dig,
    identifiers,
    items,
    references,
    safe,
    text,
)

S3_LOGGING = ("aws:s3/bucketLogging:BucketLogging", "aws:s3/bucketLoggingV2:BucketLoggingV2")
VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
SUBNETWORK = "gcp:compute/subnetwork:Subnetwork"
# Subnetworks for proxies and Private Service Connect cannot have flow logs (GCP refuses logConfig).
FLOW_LOG_PURPOSES = (None, "PRIVATE", "PRIVATE_RFC_1918")
EKS_LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
GKE_COMPONENTS = ["SYSTEM_COMPONENTS", "APISERVER", "WORKLOADS"]
# GKE logs SYSTEM_COMPONENTS and WORKLOADS when loggingConfig is not set.
GKE_DEFAULT_COMPONENTS = ["SYSTEM_COMPONENTS", "WORKLOADS"]


class AuditLogs(Rule):
    id = "audit-logs"
    category = "security"
    description = (
        "Access and activity are logged: every S3 bucket has an aws.s3.BucketLogging(V2) "
        "(bucket = it) or an inline logging block with a targetBucket, except the buckets that "
        "are themselves log targets; "
        "every GCS bucket sets logging.logBucket, except log buckets; every declared VPC has an "
        "aws.ec2.FlowLog whose vpcId is it; every GCP subnetwork (of a purpose that allows "
        "flow logs) sets logConfig; every MSK cluster has loggingInfo.brokerLogs with "
        "cloudwatchLogs, firehose or s3 enabled; every EKS cluster's enabledClusterLogTypes "
        "holds eksLogTypes; every GKE cluster's loggingConfig.enableComponents (default "
        "SYSTEM_COMPONENTS and WORKLOADS) holds gkeComponents and loggingService is not none. "
        "GKE's Kubernetes admin-activity audit log is always on in Cloud Audit Logs."
    )
    why = (
        "Without access logs, flow logs, broker logs and control-plane audit logs, a leak or an "
        "intrusion cannot be scoped: nobody can say which objects, topics or secrets were read, "
        "or from where."
    )
    severity = "high"
    params = (
        Param(
            "eksLogTypes",
            EKS_LOG_TYPES,
            "EKS control-plane log types every cluster must enable.",
            {"type": "array", "items": {"type": "string"}},
        ),
        Param(
            "gkeComponents",
            GKE_COMPONENTS,
            "GKE logging components every cluster must enable.",
            {"type": "array", "items": {"type": "string"}},
        ),
    )

    def check(self, ctx: Context) -> None:
        view = ctx.view
        self._buckets(ctx, view)
        for vpc in view.of_type(VPC):
            with ctx.guard(vpc):
                if not any(references(f, "vpcId", vpc) for f in view.of_type(FLOW_LOG)):
                    ctx.report(
                        vpc,
                        "has no flow log; add aws.ec2.FlowLog with vpcId the VPC and "
                        "trafficType ALL",
                    )
        for subnet in view.of_type(SUBNETWORK):
            with ctx.guard(subnet):
                purpose = text(dig(subnet.props, "purpose"))
                if purpose in FLOW_LOG_PURPOSES and dig(subnet.props, "logConfig") is None:
                    ctx.report(subnet, "has no flow logs; set logConfig")
        for msk in view.of_type(MSK_CLUSTER):
            with ctx.guard(msk):
                logs = dig(msk.props, "loggingInfo", "brokerLogs")
                sinks = ("cloudwatchLogs", "firehose", "s3")
                if not any(as_bool(dig(logs, s, "enabled")) is True for s in sinks):
                    ctx.report(
                        msk,
                        "broker logs are off; enable loggingInfo.brokerLogs.cloudwatchLogs, "
                        "firehose or s3",
                    )
        for eks in view.of_type(EKS_CLUSTER):
            with ctx.guard(eks):
                have = {t for t in items(dig(eks.props, "enabledClusterLogTypes"))}
                missing = [t for t in ctx["eksLogTypes"] if t not in have]
                if missing:
                    ctx.report(
                        eks,
                        f"control-plane logs {', '.join(missing)} are off; add them to "
                        "enabledClusterLogTypes",
                    )
        for gke in view.of_type(GKE_CLUSTER):
            with ctx.guard(gke):
                if text(dig(gke.props, "loggingService")) == "none":
                    ctx.report(gke, "loggingService is none: nothing is logged; remove it")
                    continue
                config = dig(gke.props, "loggingConfig")
                have = (
                    set(items(dig(config, "enableComponents")))
                    if config is not None
                    else set(GKE_DEFAULT_COMPONENTS)
                )
                missing = [c for c in ctx["gkeComponents"] if c not in have]
                if missing:
                    ctx.report(
                        gke,
                        f"logging components {', '.join(missing)} are off; add them to "
                        "loggingConfig.enableComponents",
                    )

    def _buckets(self, ctx: Context, view: StackView) -> None:
        loggings = view.of_type(*S3_LOGGING)
        s3 = view.of_type(*S3_BUCKETS)
        inline_targets = {t for b in s3 for t in safe(lambda b=b: _inline_targets(b), [])}
        targets = {
            b.urn
            for b in s3
            if any(references(g, "targetBucket", b) for g in loggings)
            or identifiers(b) & inline_targets
        }
        for bucket in s3:
            with ctx.guard(bucket):
                if bucket.urn in targets:
                    continue
                mine = [g for g in loggings if references(g, "bucket", bucket)]
                if not any(text(dig(g.props, "targetBucket")) for g in mine) and not (
                    _inline_targets(bucket)
                ):
                    ctx.report(
                        bucket,
                        "has no access log; add aws.s3.BucketLogging with a targetBucket (a "
                        "log bucket)",
                    )
        gcs = view.of_type(GCS_BUCKET)
        log_targets = {safe(lambda b=b: _gcs_log_bucket(b)) for b in gcs} - {None}
        for bucket in gcs:
            with ctx.guard(bucket):
                if text(dig(bucket.props, "name")) in log_targets:
                    continue
                if not _gcs_log_bucket(bucket):
                    ctx.report(bucket, "has no access log; set logging.logBucket to a log bucket")


def _inline_targets(bucket: Resource) -> list[str]:
    """Target buckets of the inline logging blocks (Bucket ``logging``, BucketV2 ``loggings``)."""
    blocks = [dig(bucket.props, "logging"), *items(dig(bucket.props, "loggings"))]
    return [t for t in (text(dig(b, "targetBucket")) for b in blocks) if t]


def _gcs_log_bucket(bucket: Resource) -> str | None:
    return text(dig(bucket.props, "logging", "logBucket"))


RULE = AuditLogs()
