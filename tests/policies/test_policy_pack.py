"""The policy pack: the same rules behind pulumi_policy, fed hand-built StackValidationArgs.

Nothing here starts the pack in-process: constructing PolicyPack starts a gRPC server and blocks.
The last test launches the pack the way the Pulumi CLI does, in a subprocess, and talks to it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

from google.protobuf import struct_pb2
from pulumi_policy import StackValidationArgs, StackValidationPolicy
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from policies.pack import PACK_NAME, build_policies
from policies.rules import ALL_RULES
from policyfixtures import FIXTURES, ROOT, as_policy_args, load, stack_urn, stacks_of, urn

PYTHON = sys.executable


def _policy(rule_id: str) -> StackValidationPolicy:
    (policy,) = [p for p in build_policies() if p.name == rule_id]
    return policy


def _validate(policy: StackValidationPolicy, args) -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    result = policy.validate(args, lambda message, urn=None: found.append((message, urn)))
    if asyncio.iscoroutine(result):
        asyncio.run(result)
    return found


def test_one_stack_policy_per_rule_named_by_its_id():
    policies = build_policies()
    assert [p.name for p in policies] == [r.id for r in ALL_RULES]
    assert all(isinstance(p, StackValidationPolicy) for p in policies)
    by_name = {p.name: p for p in policies}
    assert by_name["stateful-workloads-have-pdb"].enforcement_level.value == "advisory"
    assert by_name["bucket-not-public"].enforcement_level.value == "mandatory"
    schema = by_name["kafka-brokers-across-zones"].config_schema.properties["minZones"]
    assert schema["default"] == 3 and schema["type"] == "integer"


def test_validate_reports_on_a_violating_stack_and_not_on_a_passing_one():
    policy = _policy("bucket-not-public")
    failing = load(FIXTURES / "bucket-not-public" / "fail.json")
    found = _validate(policy, as_policy_args(stacks_of(failing)[0]))
    urns = {u for _, u in found}
    assert urn("test", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "b-pab") in urns
    assert urn("test", "aws:s3/bucket:Bucket", "naked") in urns
    assert any("blockPublicAcls not true" in m for m, _ in found)
    passing = load(FIXTURES / "bucket-not-public" / "pass.json")
    assert _validate(policy, as_policy_args(stacks_of(passing)[0])) == []


def test_stack_level_violation_is_attached_to_the_stack():
    doc = load(FIXTURES / "single-primary-region" / "fail-none.json")
    found = _validate(_policy("single-primary-region"), as_policy_args(stacks_of(doc)[1]))
    assert found and all(u is None for _, u in found)
    assert "is not one of its regions" in found[0][0]


def test_policy_config_from_pulumi_arrives_as_floats():
    spec = stacks_of(load(FIXTURES / "kafka-brokers-across-zones" / "pass.json"))[0]
    args = as_policy_args(spec)
    assert _validate(_policy("kafka-brokers-across-zones"), args) == []
    found = _validate(
        _policy("kafka-brokers-across-zones"),
        StackValidationArgs(args.resources, {"minZones": 4.0}),
    )
    assert any("spread broker node pools over at least 4 zones" in m for m, _ in found)


def _bucket_stack(pab_bucket, block_acls, refs=True):
    resources = [
        {"type": "pulumi:providers:aws", "name": "aws", "props": {"region": "us-east-1"}},
        {
            "type": "aws:s3/bucket:Bucket",
            "name": "b",
            "provider": "aws",
            "props": {"bucket": "<unknown>"},
        },
        {
            "type": "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            "name": "b-pab",
            "provider": "aws",
            "props": {
                "bucket": pab_bucket,
                "blockPublicAcls": block_acls,
                "blockPublicPolicy": True,
                "ignorePublicAcls": True,
                "restrictPublicBuckets": True,
            },
            "refs": {"bucket": ["b"]} if refs else {},
        },
    ]
    return {"stack": "dev", "resources": resources}


def test_unknown_values_on_create_match_by_property_dependencies():
    """On a first preview the bucket id is unknown: the block is matched to its bucket through
    the engine's property dependencies, and its known flags are still checked."""
    policy = _policy("bucket-not-public")
    assert _validate(policy, as_policy_args(_bucket_stack("<unknown>", True))) == []
    found = _validate(policy, as_policy_args(_bucket_stack("<unknown>", False)))
    assert [u for _, u in found] == [
        urn("dev", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "b-pab")
    ]


def test_an_unknown_value_skips_that_resource_only():
    def kafka(name: str, isr: object) -> dict:
        return {
            "type": "kubernetes:kafka.strimzi.io/v1:Kafka",
            "name": name,
            "props": {
                "apiVersion": "kafka.strimzi.io/v1",
                "kind": "Kafka",
                "metadata": {"name": name, "namespace": "kafka", "uid": "<unknown>"},
                "spec": {
                    "kafka": {
                        "config": {
                            "default.replication.factor": 3.0,
                            "min.insync.replicas": isr,
                            "offsets.topic.replication.factor": 3.0,
                            "transaction.state.log.replication.factor": 3.0,
                            "transaction.state.log.min.isr": 2.0,
                        }
                    }
                },
            },
        }

    args = as_policy_args(
        {
            "stack": "dev",
            "resources": [kafka("unknown", "<unknown>"), kafka("bad", 1.0), kafka("good", 2.0)],
        }
    )
    found = _validate(_policy("kafka-cluster-durability"), args)
    assert [u for _, u in found] == [urn("dev", "kubernetes:kafka.strimzi.io/v1:Kafka", "bad")]


def _struct(d):
    s = struct_pb2.Struct()
    s.update(d)
    return s


def test_end_to_end_through_the_analyzer_servicer():
    """The pack's policies behind pulumi_policy's servicer, fed gRPC messages like the engine's."""
    from pulumi.runtime import proto
    from pulumi_policy import EnforcementLevel
    from pulumi_policy.policy import _PolicyAnalyzerServicer

    servicer = _PolicyAnalyzerServicer(
        PACK_NAME, "0.1.0", build_policies(), EnforcementLevel.ADVISORY
    )
    stack = stack_urn("dev")
    provider_urn = urn("dev", "pulumi:providers:aws", "aws")
    provider = proto.AnalyzerProviderResource(
        type="pulumi:providers:aws",
        urn=provider_urn,
        name="aws",
        properties=_struct(
            {
                "region": "eu-west-1",
                "version": "7.0.0",
                "defaultTags": '{"tags": {"rtdi-jurisdiction": "us"}}',
            }
        ),
    )
    bucket_urn = urn("dev", "aws:s3/bucket:Bucket", "b")
    request = proto.AnalyzeStackRequest(
        resources=[
            proto.AnalyzerResource(
                type="pulumi:pulumi:Stack", urn=stack, name="rtdi-dev", properties=_struct({})
            ),
            proto.AnalyzerResource(
                type="pulumi:providers:aws",
                urn=provider_urn,
                name="aws",
                properties=_struct({"region": "eu-west-1"}),
            ),
            proto.AnalyzerResource(
                type="aws:s3/bucket:Bucket",
                urn=bucket_urn,
                name="b",
                parent=stack,
                provider=provider,
                properties=_struct(
                    {
                        "bucket": "b",
                        "id": "b",
                        "arn": "arn:aws:s3:::b",
                        "tagsAll": {"rtdi-jurisdiction": "us"},
                    }
                ),
            ),
            proto.AnalyzerResource(
                type="aws:s3/bucketVersioning:BucketVersioning",
                urn=urn("dev", "aws:s3/bucketVersioning:BucketVersioning", "v"),
                name="v",
                parent=stack,
                provider=provider,
                properties=_struct(
                    {
                        "bucket": UNKNOWN_STRING_VALUE,
                        "versioningConfiguration": {"status": "Enabled"},
                    }
                ),
                propertyDependencies={
                    "bucket": proto.AnalyzerPropertyDependencies(urns=[bucket_urn])
                },
            ),
        ]
    )
    diagnostics = servicer.AnalyzeStack(request, None).diagnostics
    by_policy = {}
    for d in diagnostics:
        by_policy.setdefault(d.policyName, []).append(d)
    assert "bucket-versioned" not in by_policy  # matched through the property dependency
    assert {d.urn for d in by_policy["bucket-not-public"]} == {bucket_urn}
    assert any(
        "jurisdiction 'us' does not allow" in d.message
        for d in by_policy["region-allowed-for-jurisdiction"]
    )
    assert by_policy["bucket-not-public"][0].enforcementLevel == proto.MANDATORY
    assert not [d for d in diagnostics if "can't run policy" in d.message]


def test_importing_the_rules_constructs_no_policy_pack():
    """Importing every module (and building the policies) must neither start a server nor print."""
    script = textwrap.dedent("""
        import pulumi_policy
        def boom(*a, **k):
            raise SystemExit("PolicyPack constructed")
        pulumi_policy.PolicyPack.__init__ = boom
        import policies, policies.rules, policies.engine, policies.view, policies.config
        import policies.pack, policies.checker
        from policies.rules import ALL_RULES
        policies.pack.build_policies()
        assert ALL_RULES and len({r.id for r in ALL_RULES}) == len(ALL_RULES)
    """)
    done = subprocess.run(
        [PYTHON, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def test_pack_starts_as_pulumi_starts_it_and_lists_every_rule(tmp_path):
    """``python -u -m pulumi.policy <engine> <pack dir>`` from the pack dir, as the language host
    runs it: the pack prints its port, and the analyzer lists one policy per rule."""
    import grpc
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import analyzer_pb2_grpc

    pack = ROOT / "policies"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    proc = subprocess.Popen(
        [PYTHON, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(pack)],
        cwd=pack,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.isdigit(), (
            f"expected a port, got {line!r}; stderr: "
            f"{proc.stderr.read() if proc.poll() is not None else ''}"
        )
        with grpc.insecure_channel(f"127.0.0.1:{line}") as channel:
            info = analyzer_pb2_grpc.AnalyzerStub(channel).GetAnalyzerInfo(
                empty_pb2.Empty(), timeout=30
            )
        assert info.name == PACK_NAME
        assert [p.name for p in info.policies] == [r.id for r in ALL_RULES]
    finally:
        proc.kill()
        proc.wait(timeout=30)
