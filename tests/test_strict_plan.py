"""The offline plan refuses what the real engine refuses, and shows Secrets the engine would get.

- A URN declared twice fails `pulumi up` ("Duplicate resource URN"): the plan fails too, with one
  line naming both declarations.
- Secrets are masked value by value, keys kept, so every key a custom resource or workload reads
  from a Secret can be checked against the Secret that rtdi (or Strimzi) creates.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pulumi_random as random
import pytest
import yaml

from infra.plan.engine import SECRET, StackPlan, run_entry
from infra.plan.writer import is_k8s_object, k8s_object
from infra.topology.config import StackConfig
from infra.topology.errors import ConfigError
from plantools import ROOT, STACK_NAMES

SECRET_TYPE = "kubernetes:core/v1:Secret"


# --------------------------------------------------------------------------- duplicate URNs


def test_a_urn_declared_twice_fails_the_plan_naming_both_declarations():
    def program():
        random.RandomPassword("twice", length=8)
        random.RandomPassword("twice", length=9)

    cfg = StackConfig(stack="dup", file="stacks/Pulumi.dup.yaml", values={})
    with pytest.raises(ConfigError) as info:
        run_entry(cfg, program, {})
    lines = str(info.value).splitlines()
    assert len(lines) == 1, lines
    line = lines[0]
    urn = (
        "urn:pulumi:dup::rtdi::pulumi:pulumi:Stack$random:index/randomPassword:RandomPassword"
        "::twice"
    )
    assert line.startswith(f"stacks/Pulumi.dup.yaml: Duplicate resource URN {urn}: ")
    assert line.count("random:index/randomPassword:RandomPassword 'twice' under 'rtdi-dup'") == 2
    first = program.__code__.co_firstlineno
    assert f"tests/test_strict_plan.py:{first + 1}" in line
    assert f"tests/test_strict_plan.py:{first + 2}" in line


def test_rtdi_plan_exits_2_on_a_duplicate_urn(tmp_path, monkeypatch):
    """Through the CLI: one line on stderr, exit 2, nothing written."""
    import contextlib
    import io

    import infra.program
    from infra.cli import EXIT_BAD_INPUT
    from infra.cli import main as cli_main

    async def program():
        random.RandomPassword("twice", length=8)
        random.RandomPassword("twice", length=8)

    monkeypatch.setattr(infra.program, "main", program)
    monkeypatch.chdir(ROOT)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(["plan", "global", "--out", str(tmp_path / "out")])
    assert code == EXIT_BAD_INPUT
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err.getvalue()
    assert lines[0].startswith("stacks/Pulumi.global.yaml: Duplicate resource URN urn:pulumi:")
    assert not (tmp_path / "out").exists()


def test_distinct_urns_plan(plans):
    """Control: the sample stacks declare each URN once (else `plans` would have failed)."""
    for plan in plans.values():
        assert not plan.duplicates
        assert len({r.urn for r in plan.resources}) == len(plan.resources)


# --------------------------------------------------------------------------- secrets


def _secrets(plan: StackPlan) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for r in plan.of_type(SECRET_TYPE):
        meta = r.inputs["metadata"]
        out[(meta.get("namespace", "default"), meta["name"])] = r.inputs
    return out


@pytest.mark.parametrize("stack", [s for s in STACK_NAMES if s != "global"])
def test_secrets_keep_their_keys_and_hide_their_values(plans, stack):
    secrets = _secrets(plans[stack])
    assert secrets, "every regional sample stack declares Secrets"
    for where, inputs in secrets.items():
        for field in ("data", "stringData"):
            if field in inputs and inputs[field] is not None:
                data = inputs[field]
                assert isinstance(data, dict) and data, f"{where}: {field} is {data!r}"
                assert set(data.values()) == {SECRET}, f"{where}: {field} shows a value"


def test_outputs_hide_values_while_values_other_stacks_read_stay_revealed(plans):
    shown, read = plans["global"].outputs["kafkaMesh"], plans["global"].values["kafkaMesh"]
    assert set(shown) == set(read) and shown["caCert"] == SECRET
    assert read["caCert"].startswith("-----BEGIN CERTIFICATE-----")
    assert set(shown["mirrorPasswords"]) == set(read["mirrorPasswords"])
    assert SECRET not in set(read["mirrorPasswords"].values())


def test_written_secret_manifests_are_valid_secrets(cli_plan):
    assert cli_plan.code == 0, cli_plan.stderr
    manifests = sorted(cli_plan.out.glob("*/manifests/Secret-*.yaml"))
    assert manifests
    for path in manifests:
        doc = yaml.safe_load(path.read_text())
        assert doc["kind"] == "Secret"
        assert isinstance(doc.get("data") or doc.get("stringData"), dict), path.name


# --------------------------------------------------------------------------- referenced keys


def _refs(value: Any, path: str = "") -> Iterator[tuple[str, str, str | None]]:
    """(where, secret name, key) of every Secret key a Kubernetes object reads (key None: the
    whole Secret, as `envFrom.secretRef` or a secret volume without items)."""
    if isinstance(value, dict):
        ref = value.get("secretKeyRef")
        if isinstance(ref, dict):
            yield f"{path}.secretKeyRef", ref["name"], ref["key"]
        pw = value.get("passwordSecret")
        if isinstance(pw, dict):
            yield f"{path}.passwordSecret", pw["secretName"], pw["password"]
        for i, cert in enumerate(value.get("trustedCertificates") or []):
            if "certificate" in cert:
                yield f"{path}.trustedCertificates[{i}]", cert["secretName"], cert["certificate"]
        ref = value.get("secretRef")
        if isinstance(ref, dict) and "name" in ref:
            yield f"{path}.secretRef", ref["name"], None  # envFrom: the whole Secret
        volume = value.get("secret")
        # An optional Secret volume may be absent: Kubernetes starts the pod without it.
        if isinstance(volume, dict) and "secretName" in volume and not volume.get("optional"):
            for i, item in enumerate(volume.get("items") or [{"key": None}]):
                yield f"{path}.secret.items[{i}]", volume["secretName"], item["key"]
        pair = value.get("certificateAndKey")
        if isinstance(pair, dict):
            for field in ("certificate", "key"):
                yield f"{path}.certificateAndKey.{field}", pair["secretName"], pair[field]
        for k, v in value.items():
            yield from _refs(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _refs(v, f"{path}[{i}]")


# Secrets the Strimzi operators write themselves, with the keys they hold (Strimzi docs,
# "Secrets generated by the operators"): a KafkaUser's credentials; a Kafka cluster's CAs
# unless the cluster is told to use the user's CA (`generateCertificateAuthority: false`).
USER_SECRET_KEYS = {
    "tls": {"ca.crt", "user.crt", "user.key", "user.p12", "user.password"},
    "scram-sha-512": {"password", "sasl.jaas.config"},
}
CA_SECRET_KEYS = {"ca.crt", "ca.p12", "ca.password"}


def _strimzi_secrets(plan: StackPlan) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for r in plan.resources:
        if not is_k8s_object(r):
            continue
        obj = k8s_object(r)
        ns, name = obj["metadata"].get("namespace", "default"), obj["metadata"]["name"]
        if obj["kind"] == "KafkaUser":
            out[(ns, name)] = USER_SECRET_KEYS[obj["spec"]["authentication"]["type"]]
        elif obj["kind"] == "Kafka":
            for ca in ("clusterCa", "clientsCa"):
                if obj["spec"].get(ca, {}).get("generateCertificateAuthority", True):
                    cert = f"{name}-{'cluster' if ca == 'clusterCa' else 'clients'}-ca-cert"
                    out[(ns, cert)] = CA_SECRET_KEYS
    return out


@pytest.mark.parametrize("stack", [s for s in STACK_NAMES if s != "global"])
def test_every_secret_key_referenced_exists(plans, stack):
    plan = plans[stack]
    own = {
        where: set(inputs.get("data") or {}) | set(inputs.get("stringData") or {})
        for where, inputs in _secrets(plan).items()
    }
    strimzi = _strimzi_secrets(plan)
    assert not set(own) & set(strimzi), "rtdi and Strimzi must not both write one Secret"
    checked = 0
    for r in plan.resources:
        if not is_k8s_object(r) or r.type == SECRET_TYPE:
            continue
        obj = k8s_object(r)
        ns = obj["metadata"].get("namespace", "default")
        for where, name, key in _refs(obj.get("spec"), f"{obj['kind']}/{r.name}.spec"):
            keys = own.get((ns, name), strimzi.get((ns, name)))
            assert keys is not None, f"{where}: no Secret {ns}/{name} is planned or made by Strimzi"
            assert key is None or key in keys, f"{where}: Secret {ns}/{name} has no key {key!r}"
            checked += 1
    assert checked, f"{stack}: no Secret reference found; the walk above misses a shape"


# --------------------------------------------------------------------------- checked names


def test_the_names_checks_measure_are_the_topics_declared(plans):
    """`checks.check_topic_names` derives names itself: they must be exactly the declared ones."""
    from infra.topology.checks import _topic_names
    from infra.topology.config import parse_global
    from plantools import sample_config

    model = parse_global(sample_config("global"))
    named = list(_topic_names(model))
    checked = {n.name for n in named if n.copies is None}
    declared = set()
    for plan in plans.values():
        for r in plan.resources:
            if r.type == "kubernetes:kafka.strimzi.io/v1:KafkaTopic":
                declared.add(r.inputs["spec"]["topicName"])
            elif r.type == "aws:msk/topic:Topic":
                declared.add(r.inputs["name"])
            elif r.type == "gcp:managedkafka/topic:Topic":
                declared.add(r.inputs["topicId"])
    assert declared and checked == declared
    copies = {n.name for n in named if n.copies is not None}
    registry = plans["global"].values["kafkaFederation"]["topics"]
    consumed = {
        name
        for topic in registry.values()
        for region in topic["regions"].values()
        for name in region["consume"]["topics"]
    }
    # every copy a client may read is measured (with the longest source region of its topic)
    longest = {n.copies: n.name for n in named if n.copies is not None}
    for name in consumed:
        physical = name.partition(".")[2]
        assert len(name) <= len(longest[physical]), name
    assert copies
