"""Security: Kafka data is encrypted at rest with a customer-managed key."""

from __future__ import annotations

from policies.engine import Context, Rule
from policies.rules._common import GMK_CLUSTER, MSK_CLUSTER, kafkas, node_pools
from policies.rules.bucket_encrypted import REQUIRE_CMK
from policies.view import Resource, as_bool, dig, items, str_map, text

STORAGE_CLASS = ("storage.k8s.io", "StorageClass")
EBS = ("ebs.csi.aws.com", "kubernetes.io/aws-ebs")
GCE_PD = ("pd.csi.storage.gke.io", "kubernetes.io/gce-pd")


class KafkaEncryptionAtRest(Rule):
    id = "kafka-encryption-at-rest"
    category = "security"
    description = (
        "Kafka data is encrypted at rest: an MSK cluster sets "
        "encryptionInfo.encryptionAtRestKmsKeyArn; a Managed Kafka cluster sets gcpConfig.kmsKey; "
        "the persistent volumes of a Strimzi cluster's node pools use a StorageClass declared in "
        'the stack that encrypts (EBS: encrypted "true" and a kmsKeyId; GCE PD: '
        "disk-encryption-kms-key). Volumes whose StorageClass is not declared in the stack (an "
        "on-prem cluster's) cannot be checked and pass. In a pulumi preview an MSK cluster always "
        "reports a key ARN (AWS fills in its managed key), so only the plan check is exact for MSK."
    )
    why = (
        "Broker disks hold every retained event; a snapshot or a decommissioned disk must be "
        "unreadable without the region's key."
    )
    severity = "high"
    params = (REQUIRE_CMK,)

    def check(self, ctx: Context) -> None:
        cmk = ctx["requireCustomerManagedKey"]
        for msk in ctx.view.of_type(MSK_CLUSTER):
            with ctx.guard(msk):
                if cmk and not text(dig(msk.props, "encryptionInfo", "encryptionAtRestKmsKeyArn")):
                    ctx.report(
                        msk,
                        "uses the AWS-managed key for data at rest; set "
                        "encryptionInfo.encryptionAtRestKmsKeyArn to the region's KMS key",
                    )
        for cluster in ctx.view.of_type(GMK_CLUSTER):
            with ctx.guard(cluster):
                if cmk and not text(dig(cluster.props, "gcpConfig", "kmsKey")):
                    ctx.report(
                        cluster,
                        "uses Google-managed keys for data at rest; set gcpConfig.kmsKey to the "
                        "region's Cloud KMS key",
                    )
        classes = {sc.k8s_name: sc for sc in ctx.view.of_kind(*STORAGE_CLASS)}
        for kafka in kafkas(ctx.view):
            for pool in node_pools(ctx.view, kafka):
                with ctx.guard(pool):
                    for name in _volume_classes(pool):
                        sc = classes.get(name)
                        problem = _unencrypted(sc, cmk) if sc is not None else None
                        if problem:
                            ctx.report(
                                pool,
                                f"stores Kafka {kafka.k8s_name}'s data on StorageClass {name}, "
                                f"which {problem}",
                            )


def _volume_classes(pool: Resource) -> set[str]:
    storage = dig(pool.props, "spec", "storage")
    volumes = items(dig(storage, "volumes")) if dig(storage, "type") == "jbod" else [storage]
    return {
        name
        for v in volumes
        if v is not None
        and dig(v, "type") == "persistent-claim"
        and (name := text(dig(v, "class")))
    }


def _unencrypted(sc: Resource, cmk: bool):
    provisioner = text(dig(sc.props, "provisioner"))
    params = str_map(dig(sc.props, "parameters"))
    if provisioner in EBS:
        if as_bool(params.get("encrypted")) is not True:
            return 'does not encrypt its EBS volumes; set parameters.encrypted: "true" and kmsKeyId'
        if cmk and not params.get("kmsKeyId"):
            return (
                "encrypts with the AWS-managed EBS key; set parameters.kmsKeyId to the region's "
                "KMS key"
            )
    elif provisioner in GCE_PD and cmk and not params.get("disk-encryption-kms-key"):
        return (
            "uses Google-managed disk keys; set parameters.disk-encryption-kms-key to the region's "
            "Cloud KMS key"
        )
    return None


RULE = KafkaEncryptionAtRest()
