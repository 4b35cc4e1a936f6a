"""Every Flink job signs in to each Kafka cluster it uses as its own identity, allowed exactly
what the federation registry resolved for it, and no secret sits in a ConfigMap.

Expectations come from the plans: the job specs the global stack publishes, each regional
stack's federation registry (physical topics per region), the engine the registry names for the
cluster, and the group and transactional-id prefix the job's own SQL states.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

import infra.components.flink as flink_layer
from infra.components.kafka.access import KafkaGrant, managed_kafka_acls
from infra.plan import plan_stacks
from infra.plan.engine import Declared, StackPlan
from plantools import ROOT, mock_output

REGIONAL = ["aws-eu-west-1", "aws-us-east-1", "gcp-europe-west4", "onprem-dc1"]
FLINK = "kubernetes:flink.apache.org/v1beta1:FlinkDeployment"
USER = "kubernetes:kafka.strimzi.io/v1:KafkaUser"
KAFKA = "kubernetes:kafka.strimzi.io/v1:Kafka"
SECRET = "kubernetes:core/v1:Secret"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ACL = "gcp:managedkafka/acl:Acl"
RUNNER_JAR = ROOT / "jobs" / "runner" / "target" / "rtdi-sql-runner.jar"


# --------------------------------------------------------------------------- what the plan says


def jobs(plans) -> list[dict]:
    return plans["global"].outputs["rtdi"]["flinkJobs"]


def sql_of(plan: StackPlan, job: str) -> str:
    (cm,) = [r for r in plan.of_type(CONFIGMAP) if r.inputs["metadata"]["name"] == f"{job}-sql"]
    return cm.inputs["data"]["job.sql"]


def tables(sql: str) -> dict[str, dict[str, str]]:
    """Each CREATE TABLE's WITH options, by table name."""
    out = {}
    for name, body in re.findall(r"CREATE TABLE `([^`]+)` \(.*?\) WITH \((.*?)\n\);", sql, re.S):
        out[name] = {
            k: v.replace("''", "'") for k, v in re.findall(r"'([^']+)' = '((?:[^']|'')*)'", body)
        }
    return out


def expected(plan: StackPlan, stack: str, job: dict) -> dict[str, dict[str, Any]]:
    """What the job needs on each cluster role, from the stack's registry and the job's SQL."""
    topics = plan.outputs["kafkaFederation"]["topics"]
    options = tables(sql_of(plan, job["name"]))
    out: dict[str, dict[str, Any]] = {}
    if job.get("sources"):
        consume = [topics[t["topic"]]["regions"][stack]["consume"] for t in job["sources"]]
        groups = {options[t["table"]]["properties.group.id"] for t in job["sources"]}
        out["aggregate"] = {
            "engine": consume[0]["engine"],
            "reads": sorted({n for c in consume for n in c["topics"]}),
            "groups": sorted(groups),
        }
    if job.get("sinks"):
        produce = [topics[t["topic"]]["regions"][stack]["produce"] for t in job["sinks"]]
        prefixes = [options[t["table"]]["sink.transactional-id-prefix"] for t in job["sinks"]]
        out["regional"] = {
            "engine": produce[0]["engine"],
            "writes": sorted({p["topic"] for p in produce}),
            "transactional": prefixes,
        }
    return out


def each_job(plans) -> Iterator[tuple[str, StackPlan, dict]]:
    for stack in REGIONAL:
        for job in jobs(plans):
            yield stack, plans[stack], job


def deployment(plan: StackPlan, job: str) -> dict:
    (d,) = [r.inputs for r in plan.of_type(FLINK) if r.inputs["metadata"]["name"] == job]
    return d


def container(plan: StackPlan, job: str) -> dict:
    (c,) = deployment(plan, job)["spec"]["podTemplate"]["spec"]["containers"]
    return c


def by_name(plan: StackPlan, type_: str, namespace: str) -> dict[str, Declared]:
    return {
        r.inputs["metadata"]["name"]: r
        for r in plan.of_type(type_)
        if r.inputs["metadata"]["namespace"] == namespace
    }


def acl_set(acls: list[dict]) -> set[tuple]:
    return {
        (
            a["resource"]["type"],
            a["resource"].get("name"),
            a["resource"].get("patternType"),
            tuple(sorted(a["operations"])),
        )
        for a in acls
    }


# --------------------------------------------------------------------------- Strimzi


def test_the_sample_covers_every_engine_on_each_side(plans):
    seen = {
        (role, need["engine"])
        for stack, plan, job in each_job(plans)
        for role, need in expected(plan, stack, job).items()
    }
    assert {e for _, e in seen} == {"strimzi", "msk", "gcp-managed"}


def test_strimzi_jobs_have_their_own_kafka_user_with_exactly_their_acls(plans):
    checked = 0
    for stack, plan, job in each_job(plans):
        users = by_name(plan, USER, "kafka")
        for role, need in expected(plan, stack, job).items():
            if need["engine"] != "strimzi":
                continue
            user = users[f"flink-{job['name']}-{role}"].inputs
            assert user["metadata"]["labels"]["strimzi.io/cluster"] == role
            acls = acl_set(user["spec"]["authorization"]["acls"])
            if role == "aggregate":
                want = {("topic", t, "literal", ("Describe", "Read")) for t in need["reads"]}
                want |= {("group", g, "literal", ("Read",)) for g in need["groups"]}
            else:
                want = {("topic", t, "literal", ("Describe", "Write")) for t in need["writes"]}
                ((prefix, acl_ops),) = {
                    (a[1], a[3]) for a in acls if a[0] == "transactionalId" and a[2] == "prefix"
                }
                assert acl_ops == ("Describe", "Write")
                # The ACL's prefix covers every sink's transactional ids, and no other job's.
                assert all(p.startswith(prefix) for p in need["transactional"])
                assert not any(
                    prefix.startswith(f"rtdi.{other['name']}") and other["name"] != job["name"]
                    for other in jobs(plans)
                )
                want |= {("transactionalId", prefix, "prefix", ("Describe", "Write"))}
                want |= {("cluster", None, None, ("IdempotentWrite",))}
            assert acls == want, (stack, job["name"], role)
            assert "quotas" not in user["spec"]
            checked += 1
    assert checked >= 4


def test_strimzi_users_sign_in_with_scram_on_the_workloads_listener(plans):
    for stack, plan, job in each_job(plans):
        users = by_name(plan, USER, "kafka")
        kafka_secrets = by_name(plan, SECRET, "kafka")
        flink_secrets = by_name(plan, SECRET, "flink")
        clusters = {r.inputs["metadata"]["name"]: r.inputs for r in plan.of_type(KAFKA)}
        options = tables(sql_of(plan, job["name"]))
        env = {e["name"]: e for e in container(plan, job["name"])["env"]}
        mounts = {m["name"]: m for m in container(plan, job["name"])["volumeMounts"]}
        volumes = {
            v["name"]: v
            for v in deployment(plan, job["name"])["spec"]["podTemplate"]["spec"]["volumes"]
        }
        for role, need in expected(plan, stack, job).items():
            if need["engine"] != "strimzi":
                continue
            name = f"flink-{job['name']}-{role}"
            auth = users[name].inputs["spec"]["authentication"]
            assert auth["type"] == "scram-sha-512"
            ref = auth["password"]["valueFrom"]["secretKeyRef"]
            assert kafka_secrets[ref["name"]].inputs["data"][ref["key"]] == "[secret]"
            (listener,) = [
                li
                for li in clusters[role]["spec"]["kafka"]["listeners"]
                if li["authentication"]["type"] == "scram-sha-512" and li["type"] == "internal"
            ]
            assert listener["tls"] is True
            side = [t for t in options.values() if name in t.get("properties.sasl.jaas.config", "")]
            assert side, (stack, job["name"], role)
            for t in side:
                assert t["properties.bootstrap.servers"] == (
                    f"{role}-kafka-bootstrap.kafka.svc:{listener['port']}"
                )
                assert t["properties.security.protocol"] == "SASL_SSL"
                assert t["properties.sasl.mechanism"] == "SCRAM-SHA-512"
                (variable,) = re.findall(r"\$\{env:(\w+)\}", t["properties.sasl.jaas.config"])
                key_ref = env[variable]["valueFrom"]["secretKeyRef"]
                copy = flink_secrets[key_ref["name"]].inputs
                assert copy["data"] == {"password": "[secret]", "ca.crt": "[secret]"}
                # The trust store is the Secret's ca.crt (the mesh CA), mounted where it says.
                assert t["properties.ssl.truststore.type"] == "PEM"
                (vol,) = [
                    v
                    for v in volumes.values()
                    if v.get("secret", {}).get("secretName") == key_ref["name"]
                ]
                assert vol["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
                mount = mounts[vol["name"]]["mountPath"]
                assert t["properties.ssl.truststore.location"] == f"{mount}/ca.crt"


def _with_rate(grants: dict[str, KafkaGrant], rate: int) -> dict[str, KafkaGrant]:
    """The grants with a consumer quota on the reading side, as a backfill's have."""
    return {
        role: dataclasses.replace(g, consumer_byte_rate=rate) if role == "aggregate" else g
        for role, g in grants.items()
    }


def test_a_consumer_quota_reaches_the_kafka_user(project, monkeypatch):
    """A throttled grant (the backfill's) becomes the KafkaUser's consumerByteRate; planned as a
    first deployment (no peer stack exists), which must plan all the same."""
    rate = 5 * 1024 * 1024
    real = flink_layer.kafka_grants

    def throttled(*args: Any, **kwargs: Any) -> dict[str, KafkaGrant]:
        return _with_rate(real(*args, **kwargs), rate)

    monkeypatch.setattr(flink_layer, "kafka_grants", throttled)
    first = plan_stacks(project, ["global", "onprem-dc1"], rounds=1)
    plan = first["onprem-dc1"]
    assert plan.outputs["pending"], "planned as a first deployment"
    users = by_name(plan, USER, "kafka")
    for job in jobs(first):
        assert users[f"flink-{job['name']}-aggregate"].inputs["spec"]["quotas"] == {
            "consumerByteRate": rate
        }
        if job.get("kind") == "archive":  # it writes files, not Kafka: no regional user
            assert f"flink-{job['name']}-regional" not in users
            continue
        assert "quotas" not in users[f"flink-{job['name']}-regional"].inputs["spec"]


def test_an_engine_without_quotas_says_a_quota_is_not_enforced(plans, project, monkeypatch, caplog):
    """MSK has no client quotas in its API: a throttled grant plans, with a warning naming it."""
    real = flink_layer.kafka_grants
    monkeypatch.setattr(
        flink_layer,
        "kafka_grants",
        lambda *a, **k: _with_rate(real(*a, **k), 1024),
    )
    with caplog.at_level(logging.WARNING):
        plan_stacks(project, ["aws-eu-west-1"], rounds=1)
    warnings = [r.getMessage() for r in caplog.records if "quota" in r.getMessage()]
    assert sorted(warnings) == sorted(
        f"flink-{job}: consumer byte-rate quota 1024 is not enforced (MSK has no client quotas "
        "in its API); the workload must throttle itself"
        for job in (j["name"] for j in jobs(plans))
    )


# --------------------------------------------------------------------------- MSK


def test_msk_jobs_get_an_iam_policy_on_their_own_role_for_exactly_their_topics(plans):
    checked = 0
    for stack, plan, job in each_job(plans):
        policies = {r.name: r.inputs for r in plan.of_type(ROLE_POLICY)}
        clusters = {
            r.inputs["clusterName"].rsplit("-", 1)[1]: r
            for r in plan.of_type("aws:msk/cluster:Cluster")
        }
        options = tables(sql_of(plan, job["name"]))
        for role, need in expected(plan, stack, job).items():
            if need["engine"] != "msk":
                continue
            irsa = policies[f"{stack}-flink-{job['name']}-irsa"]
            policy = policies[f"{stack}-kafka-{role}-flink-{job['name']}"]
            # The job's own IRSA role: the one that also holds its state buckets.
            assert policy["role"] == irsa["role"]
            arn = mock_output(clusters[role], "arn")
            head, rest = arn.split(":cluster/")
            doc = json.loads(policy["policy"])
            grants: dict[str, set[str]] = {}
            for s in doc["Statement"]:
                assert s["Effect"] == "Allow"
                for a in s["Action"]:
                    grants.setdefault(a, set()).update(s["Resource"])
            assert grants.pop("kafka-cluster:Connect") == {arn}
            assert grants.pop("kafka-cluster:DescribeCluster") == {arn}
            if role == "aggregate":
                topics = {f"{head}:topic/{rest}/{t}" for t in need["reads"]}
                assert grants == {
                    "kafka-cluster:DescribeTopic": topics,
                    "kafka-cluster:ReadData": topics,
                    "kafka-cluster:AlterGroup": {
                        f"{head}:group/{rest}/{g}" for g in need["groups"]
                    },
                    "kafka-cluster:DescribeGroup": {
                        f"{head}:group/{rest}/{g}" for g in need["groups"]
                    },
                }
            else:
                topics = {f"{head}:topic/{rest}/{t}" for t in need["writes"]}
                (txn,) = grants["kafka-cluster:AlterTransactionalId"]
                prefix = txn.removeprefix(f"{head}:transactional-id/{rest}/").removesuffix("*")
                assert all(p.startswith(prefix) for p in need["transactional"])
                assert grants == {
                    "kafka-cluster:DescribeTopic": topics,
                    "kafka-cluster:WriteData": topics,
                    "kafka-cluster:WriteDataIdempotently": {arn},
                    "kafka-cluster:AlterTransactionalId": {txn},
                    "kafka-cluster:DescribeTransactionalId": {txn},
                }
            side = [
                t for t in options.values() if t.get("properties.sasl.mechanism") == "AWS_MSK_IAM"
            ]
            assert side
            for t in side:
                assert t["properties.security.protocol"] == "SASL_SSL"
                assert ":9098" in t["properties.bootstrap.servers"]  # MSK's IAM listener
                assert "IAMLoginModule required" in t["properties.sasl.jaas.config"]
            checked += 1
    assert checked >= 2


# --------------------------------------------------------------------------- GCP Managed Kafka


def test_gcp_jobs_are_named_on_managed_kafka_acls_with_their_own_service_account(plans):
    checked = 0
    for stack, plan, job in each_job(plans):
        need = expected(plan, stack, job).get("regional")
        if need is None or need["engine"] != "gcp-managed":
            continue
        acls = {r.inputs["aclId"]: r.inputs for r in plan.of_type(ACL)}
        members = {r.name: r.inputs for r in plan.of_type("gcp:projects/iAMMember:IAMMember")}
        (member,) = [
            m for n, m in members.items() if n == f"{stack}-kafka-regional-flink-{job['name']}"
        ]
        assert member["role"] == "roles/managedkafka.client"
        email = member["member"].removeprefix("serviceAccount:")
        for topic in need["writes"]:
            entries = {
                (e["principal"], e["operation"]) for e in acls[f"topic/{topic}"]["aclEntries"]
            }
            assert {op for who, op in entries if who == f"User:{email}"} == {"DESCRIBE", "WRITE"}
        mine = {
            acl_id
            for acl_id, a in acls.items()
            if any(e["principal"] == f"User:{email}" for e in a["aclEntries"])
        }
        prefixes = [i.split("/", 1)[1] for i in mine if i.startswith("transactionalIdPrefixed/")]
        assert len(prefixes) == 1
        assert all(p.startswith(prefixes[0]) for p in need["transactional"])
        assert mine == {f"topic/{t}" for t in need["writes"]} | {
            f"transactionalIdPrefixed/{prefixes[0]}"
        }
        options = tables(sql_of(plan, job["name"]))
        side = [t for t in options.values() if t.get("properties.sasl.mechanism") == "OAUTHBEARER"]
        assert side
        for t in side:
            assert "GcpLoginCallbackHandler" in t["properties.sasl.login.callback.handler.class"]
        checked += 1
    assert checked == 2


def test_managed_kafka_acls_merge_grants_sharing_a_topic():
    """Two grants on one topic are one resource pattern: both keep their operations."""
    from infra.targets.base import WorkloadIdentity

    wi = WorkloadIdentity(service_account="a", namespace="flink")
    reader = KafkaGrant(principal="flink-a", identity=wi, read_topics=("t",), groups=("g",))
    writer = KafkaGrant(principal="flink-b", identity=wi, write_topics=("t",))
    assert managed_kafka_acls(reader) == {
        "topic/t": ["DESCRIBE", "READ"],
        "consumerGroup/g": ["READ"],
    }
    assert managed_kafka_acls(writer) == {"topic/t": ["DESCRIBE", "WRITE"]}


# --------------------------------------------------------------------------- every engine


def test_no_secret_in_any_configmap(plans):
    for stack in REGIONAL:
        plan = plans[stack]
        secrets = [v for r in plan.of_type(SECRET) for v in (r.inputs.get("data") or {}).values()]
        assert secrets and set(secrets) == {"[secret]"}, stack  # every Secret value masked
        revealed = json.dumps(plan.values)
        for cm in plan.of_type(CONFIGMAP):
            text = json.dumps(cm.inputs)
            assert "[secret]" not in text, (stack, cm.name)
            assert "plan-placeholder-" not in text, (stack, cm.name)  # a random password
            for sql in (cm.inputs.get("data") or {}).values():
                for m in re.finditer(r'password="([^"]*)"', sql):
                    assert re.fullmatch(r"\$\{env:\w+\}", m.group(1)), (stack, cm.name)
        assert revealed  # the stack's outputs were read


def test_two_jobs_never_share_an_identity(plans):
    for stack in REGIONAL:
        plan = plans[stack]
        principals: dict[str, set[str]] = {}
        for job in jobs(plans):
            d = deployment(plan, job["name"])
            env = container(plan, job["name"])["env"]
            ids = {d["spec"]["serviceAccount"]}
            ids |= {
                e["valueFrom"]["secretKeyRef"]["name"]
                for e in env
                if e["name"].startswith("KAFKA_") and "valueFrom" in e
            }
            for t in tables(sql_of(plan, job["name"])).values():
                ids |= set(
                    re.findall(r'username="([^"]+)"', t.get("properties.sasl.jaas.config", ""))
                )
            principals[job["name"]] = ids
        names = list(principals)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                assert not principals[a] & principals[b], (stack, a, b)


def test_the_pod_env_fills_every_placeholder_of_its_script(plans):
    for stack, plan, job in each_job(plans):
        sql = sql_of(plan, job["name"])
        env = {e["name"] for e in container(plan, job["name"])["env"]}
        assert set(re.findall(r"\$\{env:(\w+)\}", sql)) <= env, (stack, job["name"])


def test_the_runner_jar_holds_every_login_class_the_plans_name(plans):
    """The client properties name classes by their unrelocated names: the runner's jar must
    hold each (a relocated connector would not)."""
    if not RUNNER_JAR.is_file():
        if os.environ.get("CI"):
            pytest.fail("the runner jar is not built, but CI is set: `make runner-jar`")
        pytest.skip("the runner jar is not built: `make runner-jar`")
    named = set()
    for _stack, plan, job in each_job(plans):
        for t in tables(sql_of(plan, job["name"])).values():
            for key in (
                "properties.sasl.jaas.config",
                "properties.sasl.client.callback.handler.class",
                "properties.sasl.login.callback.handler.class",
            ):
                if key in t:
                    named.add(t[key].split()[0].rstrip(";"))
    assert len(named) >= 4, named
    with zipfile.ZipFile(RUNNER_JAR) as jar:
        present = set(jar.namelist())
    for cls in named:
        assert cls.replace(".", "/") + ".class" in present, cls
