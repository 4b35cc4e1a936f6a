"""A first deployment converges from nothing, in any order (offline, through the mock engine).

Regional stacks read each other's `kafkaRegional` (and GCP's `kafkaRegionalSecrets`). A peer
stack that does not exist yet or has not exported yet makes the flows that need it *pending*:
left out of what is declared, listed in the stack's `pending` output, logged as a warning. The
mocks answer a read of a stack that was not planned exactly as the engine answers a read of a
stack that does not exist (tests/test_peers_cli.py pins that to the real CLI).
"""

from __future__ import annotations

import json
import logging

import pulumi
import pytest

from infra.plan import plan_stacks
from infra.plan.engine import StackPlan, run_stack
from infra.plan.mocks import StackOutputsFor
from infra.program import main
from plantools import STACK_NAMES, sample_config

REGIONAL = [s for s in STACK_NAMES if s != "global"]
CR = "kubernetes:kafka.strimzi.io/v1:"
MISSING = "stack does not exist yet"

# The sample topology: aws-eu-west-1 runs MSK and gcp-europe-west4 GCP Managed Kafka as their
# regional clusters, so only those two publish what others must read; every region pulls from
# every region, so every other region waits for both, and the two wait for each other.
FIRST_DEPLOYMENT = {
    "aws-us-east-1": [
        ("aws-eu-west-1", "MirrorMaker 2 flow aws-eu-west-1 -> aws-us-east-1 aggregate"),
        ("aws-eu-west-1", "federation registry address of aws-eu-west-1 regional"),
        ("gcp-europe-west4", "MirrorMaker 2 flow gcp-europe-west4 -> aws-us-east-1 aggregate"),
        ("gcp-europe-west4", "federation registry address of gcp-europe-west4 regional"),
    ],
    "aws-eu-west-1": [
        ("gcp-europe-west4", "MirrorMaker 2 flow gcp-europe-west4 -> aws-eu-west-1 aggregate"),
        ("gcp-europe-west4", "federation registry address of gcp-europe-west4 regional"),
    ],
    "gcp-europe-west4": [
        ("aws-eu-west-1", "MirrorMaker 2 flow aws-eu-west-1 -> gcp-europe-west4 aggregate"),
        ("aws-eu-west-1", "federation registry address of aws-eu-west-1 regional"),
    ],
    "onprem-dc1": [
        ("aws-eu-west-1", "MirrorMaker 2 flow aws-eu-west-1 -> onprem-dc1 aggregate"),
        ("aws-eu-west-1", "federation registry address of aws-eu-west-1 regional"),
        ("gcp-europe-west4", "MirrorMaker 2 flow gcp-europe-west4 -> onprem-dc1 aggregate"),
        ("gcp-europe-west4", "federation registry address of gcp-europe-west4 regional"),
    ],
}
PEER_EXPORTS = ("kafkaRegional", "kafkaRegionalSecrets")


@pytest.fixture(scope="module")
def first(project):
    """Every sample stack as a first deployment: no regional stack exists yet."""
    return plan_stacks(project, STACK_NAMES, rounds=1)


def _pending(plan: StackPlan) -> list[tuple[str, str]]:
    assert all(
        p["output"] == "kafkaRegional" and p["reason"] == MISSING for p in plan.outputs["pending"]
    ), plan.outputs["pending"]
    return [(p["stack"], p["waiting"]) for p in plan.outputs["pending"]]


def mirror_sources(plan: StackPlan) -> list[str]:
    via_mm2 = [
        m["source"]["alias"]
        for x in plan.of_type(CR + "KafkaMirrorMaker2")
        for m in x.inputs["spec"]["mirrors"]
    ]
    via_replicator = [
        r.inputs["tags"]["rtdi-source-region"]
        for r in plan.of_type("aws:msk/replicator:Replicator")
    ]
    return sorted(via_mm2 + via_replicator)


def registry_addresses(plan: StackPlan) -> dict[str, str | None]:
    """Each region's regional bootstrap in the stack's registry (None: not known yet)."""
    regions = plan.values["kafkaFederation"]["topics"]["trips"]["regions"]
    return {r: e["produce"].get("bootstrap") for r, e in regions.items()}


def secret_names(plan: StackPlan) -> set[str]:
    return {r.inputs["metadata"]["name"] for r in plan.of_type("kubernetes:core/v1:Secret")}


# ------------------------------------------------------------------ round 1: first deployment


@pytest.mark.parametrize("stack", REGIONAL)
def test_first_deployment_pends_exactly_the_flows_that_need_a_peer(first, stack):
    assert _pending(first[stack]) == FIRST_DEPLOYMENT[stack]


@pytest.mark.parametrize("stack", REGIONAL)
def test_pending_flows_are_left_out_and_the_registry_says_not_known_yet(first, topology, stack):
    waiting = {peer for peer, _ in FIRST_DEPLOYMENT[stack]}
    assert mirror_sources(first[stack]) == sorted(set(topology.region_ids) - waiting)
    assert not {f"kafka-mirror-{peer}" for peer in waiting} & secret_names(first[stack])
    addresses = registry_addresses(first[stack])
    assert {r for r, a in addresses.items() if a is None} == waiting
    # Its own cluster and Strimzi peers are known from the start.
    assert addresses[stack] is not None


def test_first_deployment_warns_naming_the_stack_to_pulumi_up(project, caplog):
    with caplog.at_level(logging.WARNING):
        plan_stacks(project, ["aws-eu-west-1"], rounds=1)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "aws-eu-west-1: MirrorMaker 2 flow gcp-europe-west4 -> aws-eu-west-1 aggregate is "
        "pending: stack does not exist yet (gcp-europe-west4: kafkaRegional); `pulumi up` stack "
        "gcp-europe-west4, then this stack again",
        "aws-eu-west-1: federation registry address of gcp-europe-west4 regional is pending: "
        "stack does not exist yet (gcp-europe-west4: kafkaRegional); `pulumi up` stack "
        "gcp-europe-west4, then this stack again",
    ]


def test_a_peer_without_outputs_yet_is_pending_too(plans):
    """The peer stack exists (`pulumi stack init`, or its update failed) but exported nothing."""
    reads = {"global": _read(plans["global"]), "gcp-europe-west4": StackOutputsFor({})}
    plan = run_stack(sample_config("aws-eu-west-1"), main, reads)
    assert plan.outputs["pending"] == [
        {
            "stack": "gcp-europe-west4",
            "output": "kafkaRegional",
            "reason": "stack has no output kafkaRegional yet",
            "waiting": waiting,
        }
        for _, waiting in FIRST_DEPLOYMENT["aws-eu-west-1"]
    ]


def test_a_gcp_peer_without_its_credentials_output_is_pending(plans):
    """GCP's reader key is a separate, secret output: a flow needs both."""
    gcp = plans["gcp-europe-west4"].values
    reads = {
        "global": _read(plans["global"]),
        "gcp-europe-west4": StackOutputsFor({"kafkaRegional": gcp["kafkaRegional"]}),
    }
    plan = run_stack(sample_config("aws-eu-west-1"), main, reads)
    assert {(p["output"], p["reason"]) for p in plan.outputs["pending"]} == {
        ("kafkaRegionalSecrets", "stack has no output kafkaRegionalSecrets yet")
    }


def test_a_global_stack_without_outputs_is_one_clear_line():
    with pytest.raises(pulumi.RunError) as info:
        run_stack(sample_config("onprem-dc1"), main, {"global": StackOutputsFor({})})
    assert str(info.value) == (
        "stacks/Pulumi.onprem-dc1.yaml: rtdi:globalStack = 'organization/rtdi/global': stack "
        "organization/rtdi/global exports no `rtdi` output; run `pulumi up` on the global stack "
        "first"
    )


def test_a_global_stack_whose_secrets_cannot_be_decrypted_is_one_clear_line(plans):
    """Another passphrase: Pulumi elides the undecryptable `kafkaMesh` to {} and only warns."""
    values = {**plans["global"].values, "kafkaMesh": {}}
    with pytest.raises(pulumi.RunError) as info:
        run_stack(sample_config("onprem-dc1"), main, {"global": StackOutputsFor(values)})
    assert str(info.value) == (
        "stacks/Pulumi.onprem-dc1.yaml: rtdi:globalStack = 'organization/rtdi/global': stack "
        "organization/rtdi/global's secret output `kafkaMesh` reads as empty: this stack cannot "
        "decrypt it; allowed: every stack with the same secrets provider (the same "
        "PULUMI_CONFIG_PASSPHRASE, or the same --secrets-provider at `pulumi stack init`)"
    )


def test_a_missing_global_stack_is_one_clear_line():
    with pytest.raises(pulumi.RunError) as info:
        run_stack(sample_config("onprem-dc1"), main, {})
    message = str(info.value)
    assert "\n" not in message
    assert message == (
        "stacks/Pulumi.onprem-dc1.yaml: rtdi:globalStack = 'organization/rtdi/global': stack "
        "organization/rtdi/global does not exist yet, so it exports no `rtdi` output; run "
        "`pulumi up` on the global stack first"
    )


# ------------------------------------------------------------------ round 2: converged


@pytest.mark.parametrize("stack", REGIONAL)
def test_the_second_round_completes_every_flow(plans, topology, stack):
    plan = plans[stack]
    assert plan.outputs["pending"] == []
    assert mirror_sources(plan) == sorted(topology.region_ids)
    addresses = registry_addresses(plan)
    assert set(addresses) == set(topology.region_ids)
    assert all(addresses.values()), addresses
    # What each peer published, not a placeholder invented for it.
    for peer in ("aws-eu-west-1", "gcp-europe-west4"):
        assert addresses[peer] == plans[peer].values["kafkaRegional"]["bootstrap"]


def test_msk_replicator_and_mirror_maker_sources_come_from_the_peers(plans):
    (mm2,) = plans["onprem-dc1"].of_type(CR + "KafkaMirrorMaker2")
    sources = {m["source"]["alias"]: m["source"] for m in mm2.inputs["spec"]["mirrors"]}
    eu, gcp = plans["aws-eu-west-1"].values, plans["gcp-europe-west4"].values
    assert sources["aws-eu-west-1"]["bootstrapServers"] == eu["kafkaRegional"]["bootstrap"]
    assert sources["gcp-europe-west4"]["bootstrapServers"] == gcp["kafkaRegional"]["bootstrap"]
    assert (
        sources["gcp-europe-west4"]["authentication"]["username"]
        == gcp["kafkaRegional"]["username"]
    )
    (replicator,) = plans["aws-eu-west-1"].of_type("aws:msk/replicator:Replicator")
    assert replicator.inputs["tags"]["rtdi-source-region"] == "aws-eu-west-1"


def test_peer_credentials_stay_secret(plans):
    for stack in REGIONAL:
        shown = plans[stack].outputs["kafkaRegionalSecrets"]  # masked value by value
        assert all(v == "[secret]" for v in shown.values()), shown
        assert set(shown) == set(plans[stack].values["kafkaRegionalSecrets"])
    assert set(plans["gcp-europe-west4"].outputs["kafkaRegionalSecrets"]) == {"password"}
    for stack in REGIONAL:
        assert "password" not in json.dumps(plans[stack].outputs["kafkaRegional"])
    secrets = {
        r.inputs["metadata"]["name"]: r.inputs
        for r in plans["onprem-dc1"].of_type("kubernetes:core/v1:Secret")
    }
    assert secrets["kafka-mirror-gcp-europe-west4"]["data"] == {"password": "[secret]"}


# ------------------------------------------------------------------ no cycle, any order


def _read(plan: StackPlan) -> StackOutputsFor:
    from infra.plan import _as_read

    return _as_read(plan)


@pytest.mark.parametrize("stack", REGIONAL)
def test_what_a_stack_exports_for_peers_does_not_depend_on_its_peers(first, plans, stack):
    """No cycle: a stack's exports for peers are the same before and after it read its peers,
    so the second round never changes what the first round gave the others."""
    for name in PEER_EXPORTS:
        assert first[stack].values[name] == plans[stack].values[name]


def _as_json(plan: StackPlan) -> list:
    return [r.as_json() for r in plan.resources]


@pytest.mark.parametrize("order", ["sorted", "reversed"])
def test_two_rounds_suffice_in_any_order(plans, order):
    """`pulumi up` one stack after another, each seeing the stacks that exist by then; then once
    more each. The second pass is complete and is exactly what `rtdi plan` shows."""
    stacks = sorted(REGIONAL, reverse=order == "reversed")
    state = {"global": _read(plans["global"])}
    for stack in stacks:
        state[stack] = _read(run_stack(sample_config(stack), main, dict(state)))
    for stack in stacks:
        plan = run_stack(sample_config(stack), main, dict(state))
        assert plan.outputs["pending"] == []
        assert _as_json(plan) == _as_json(plans[stack])
        assert plan.outputs == plans[stack].outputs
        state[stack] = _read(plan)


def test_plan_order_does_not_matter(project, plans):
    backwards = plan_stacks(project, list(reversed(STACK_NAMES)))
    for stack in STACK_NAMES:
        assert _as_json(backwards[stack]) == _as_json(plans[stack])
        assert backwards[stack].outputs == plans[stack].outputs


def test_planning_one_stack_plans_the_peers_it_reads(project, plans):
    """`rtdi plan aws-us-east-1` shows the converged stack, not a first deployment."""
    alone = plan_stacks(project, ["aws-us-east-1"])
    assert list(alone) == ["aws-us-east-1"]
    assert alone["aws-us-east-1"].outputs["pending"] == []
    assert _as_json(alone["aws-us-east-1"]) == _as_json(plans["aws-us-east-1"])


def test_rounds_other_than_one_or_two_are_refused(project):
    with pytest.raises(ValueError, match="rounds must be 1"):
        plan_stacks(project, ["global"], rounds=3)


def test_a_peer_the_program_forgot_to_read_is_a_bug_not_a_pending_flow(plans):
    """Only a read can say a peer is missing; a peer never read must not pass for one."""
    from infra.program import regional_stack
    from infra.topology.config import from_engine, parse_regional
    from infra.topology.model import Kafka, Topology

    published = plans["global"].values["rtdi"]
    topology = Topology.model_validate(published["topology"])
    kafka = Kafka.model_validate(published["kafka"])

    async def program() -> None:
        model = parse_regional(from_engine(pulumi.get_stack()), topology)
        mesh = pulumi.Output.secret(plans["global"].values["kafkaMesh"])
        regional_stack(model, topology, kafka, mesh, {})

    with pytest.raises(ValueError, match="peer stack of aws-eu-west-1 was not read"):
        run_stack(sample_config("onprem-dc1"), program, {"global": _read(plans["global"])})
