"""The Flink layer as the plans declare it: the operator per region, one FlinkDeployment per job
and region with its state on the region's own object store, and job specs refused in one line.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from infra import versions
from infra.cli import EXIT_BAD_INPUT
from infra.cli import main as cli_main
from infra.components.flink import FORBIDDEN_KEYS, admission_issues
from infra.topology import jobs as jobs_module
from infra.topology.config import parse_global
from infra.topology.errors import ConfigError
from infra.topology.jobs import JOBS_DIR, load_jobs
from plantools import ROOT, sample_config

FLINK = "kubernetes:flink.apache.org/v1beta1:FlinkDeployment"
RELEASE = "kubernetes:helm.sh/v3:Release"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
REGIONAL = ["aws-eu-west-1", "aws-us-east-1", "gcp-europe-west4", "onprem-dc1"]
JOBS = {"surge-pricing": "all-active", "payments": "active-passive", "archive": "all-active"}


def deployments(plan) -> dict[str, dict]:
    return {r.inputs["metadata"]["name"]: r.inputs for r in plan.of_type(FLINK)}


def hosts(bootstrap: str) -> set[str]:
    return {b.rsplit(":", 1)[0] for b in bootstrap.split(",")}


def env_of(spec: dict) -> dict[str, str]:
    (container,) = spec["podTemplate"]["spec"]["containers"]
    return {e["name"]: e.get("value") for e in container.get("env", [])}


# --------------------------------------------------------------------------- the plans


def test_every_region_declares_each_job_once_and_the_primary_runs_active_passive(plans):
    primary = plans["global"].outputs["primaryRegion"]
    for stack in REGIONAL:
        found = deployments(plans[stack])
        assert sorted(found) == sorted(JOBS), stack
        states = {name: d["spec"]["job"]["state"] for name, d in found.items()}
        assert states["surge-pricing"] == "running"
        assert states["payments"] == ("running" if stack == primary else "suspended")
        assert plans[stack].outputs["flinkJobs"] == states


def test_deployments_use_the_runner_contract(plans):
    for stack in REGIONAL:
        for name, d in deployments(plans[stack]).items():
            spec = d["spec"]
            assert spec["flinkVersion"] == versions.FLINK_CRD_VERSION == "v2_2"
            assert spec["mode"] == "native"
            hdfs = spec["flinkConfiguration"]["execution.checkpointing.dir"].startswith("hdfs:")
            assert spec["image"] == (
                versions.FLINK_SQL_RUNNER_HDFS_IMAGE if hdfs else versions.FLINK_SQL_RUNNER_IMAGE
            ), "an HDFS region's image carries Hadoop's client"
            assert hdfs is (stack == "onprem-dc1")
            assert spec["job"]["jarURI"] == "local:///opt/flink/usrlib/rtdi-sql-runner.jar"
            assert spec["job"]["args"] == ["--sql-file", "/opt/rtdi/sql/job.sql"]
            pod = spec["podTemplate"]["spec"]
            (container,) = pod["containers"]
            assert container["name"] == "flink-main-container"
            assert {"name": "sql", "mountPath": "/opt/rtdi/sql", "readOnly": True} in container[
                "volumeMounts"
            ]
            assert {"name": "sql", "configMap": {"name": f"{name}-sql"}} in pod["volumes"]
            (cm,) = [
                r for r in plans[stack].of_type(CONFIGMAP) if r.name == f"{stack}-flink-{name}-sql"
            ]
            assert cm.inputs["metadata"] == {**cm.inputs["metadata"], "name": f"{name}-sql"}
            assert "INSERT INTO" in cm.inputs["data"]["job.sql"]


def test_state_lives_in_the_regions_own_flink_state_bucket(plans):
    schemes = {"s3": "s3p", "gs": "gs", "hdfs": "hdfs"}
    for stack in REGIONAL:
        bucket = plans[stack].outputs["buckets"]["flink-state"]
        scheme, rest = bucket.split("://", 1)
        base = f"{schemes[scheme]}://{rest.rstrip('/')}"
        for name, d in deployments(plans[stack]).items():
            conf = d["spec"]["flinkConfiguration"]
            assert conf["execution.checkpointing.dir"] == f"{base}/{name}/checkpoints"
            assert conf["execution.checkpointing.savepoint-dir"] == f"{base}/{name}/savepoints"
            assert conf["high-availability.storageDir"] == f"{base}/{name}/ha"
            assert conf["state.backend.type"] == "rocksdb"
            assert conf["execution.checkpointing.incremental"] == "true"
            assert conf["execution.checkpointing.mode"] == "EXACTLY_ONCE"
            retention = conf["execution.checkpointing.externalized-checkpoint-retention"]
            assert retention == "RETAIN_ON_CANCELLATION"
            assert not set(FORBIDDEN_KEYS) & set(conf)
            assert all(isinstance(v, str) for v in conf.values())


def test_filesystem_plugins_match_the_images_flink_version(plans):
    v = versions.FLINK_VERSION
    expected = {
        "aws-us-east-1": f"flink-s3-fs-presto-{v}.jar;flink-s3-fs-hadoop-{v}.jar",
        "aws-eu-west-1": f"flink-s3-fs-presto-{v}.jar;flink-s3-fs-hadoop-{v}.jar",
        "gcp-europe-west4": f"flink-gs-fs-hadoop-{v}.jar",
        "onprem-dc1": None,  # HDFS: no plugin, the Hadoop configuration instead
    }
    for stack, plugins in expected.items():
        for d in deployments(plans[stack]).values():
            assert env_of(d["spec"]).get("ENABLE_BUILT_IN_PLUGINS") == plugins, stack


def test_aws_names_the_web_identity_provider_and_hdfs_gets_its_configuration(plans):
    key = "fs.s3a.aws.credentials.provider"
    for stack in REGIONAL:
        for d in deployments(plans[stack]).values():
            conf = d["spec"]["flinkConfiguration"]
            if stack.startswith("aws-"):
                assert conf[key] == "com.amazonaws.auth.WebIdentityTokenCredentialsProvider"
            else:
                assert key not in conf
            hdfs = stack == "onprem-dc1"
            assert (env_of(d["spec"]).get("HADOOP_CONF_DIR") == "/etc/hadoop/conf") is hdfs


def test_each_job_runs_as_its_own_service_account_with_its_workload_identity(plans):
    for stack in REGIONAL:
        accounts = {
            r.inputs["metadata"]["name"]: r
            for r in plans[stack].of_type("kubernetes:core/v1:ServiceAccount")
            if r.inputs["metadata"]["namespace"] == "flink"
        }
        bindings = {
            r.inputs["metadata"]["name"]: r.inputs
            for r in plans[stack].of_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
            if r.inputs["metadata"]["namespace"] == "flink"
        }
        found = deployments(plans[stack])
        used = [d["spec"]["serviceAccount"] for d in found.values()]
        # One account per job: no two jobs share an identity.
        assert sorted(used) == sorted(f"flink-{name}" for name in found)
        for name, d in found.items():
            account = d["spec"]["serviceAccount"]
            sa = accounts[account]
            # The operator chart's job Role, bound to the job's own account.
            assert bindings[account]["roleRef"] == {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "flink",
            }
            assert bindings[account]["subjects"] == [
                {"kind": "ServiceAccount", "name": account, "namespace": "flink"}
            ]
            annotations = sa.inputs["metadata"].get("annotations", {})
            if stack.startswith("aws-"):
                assert "eks.amazonaws.com/role-arn" in annotations
                (policy,) = [
                    r
                    for r in plans[stack].of_type("aws:iam/rolePolicy:RolePolicy")
                    if r.name == f"{stack}-flink-{name}-irsa"
                ]
                doc = json.loads(policy.inputs["policy"])
                resources = {res for s in doc["Statement"] for res in s["Resource"]}
                # Its state; the archive only for the job that writes it.
                for purpose in ("flink-state", "archive"):
                    bucket = plans[stack].outputs["buckets"][purpose].removeprefix("s3://")
                    granted = f"arn:aws:s3:::{bucket}/*" in resources
                    assert granted == (purpose == "flink-state" or name == "archive"), name
            if stack.startswith("gcp-"):
                assert "iam.gke.io/gcp-service-account" in annotations
        if stack.startswith("aws-"):
            roles = [
                r.inputs["annotations"]["eks.amazonaws.com/role-arn"]
                if "annotations" in r.inputs
                else r.inputs["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
                for r in (accounts[a] for a in used)
            ]
            assert len(set(roles)) == len(roles)


def test_active_passive_jobs_have_a_standby_jobmanager_and_kubernetes_ha(plans):
    for stack in REGIONAL:
        for name, d in deployments(plans[stack]).items():
            spec = d["spec"]
            standby = JOBS[name] == "active-passive"
            assert spec["jobManager"]["replicas"] == (2 if standby else 1)
            # Every stateful job gets HA too: last-state upgrades need it.
            assert spec["flinkConfiguration"]["high-availability.type"] == "kubernetes"


def test_taskmanagers_spread_over_zones_with_a_disruption_budget(plans):
    for stack in REGIONAL:
        budgets = {r.inputs["metadata"]["name"]: r.inputs for r in plans[stack].of_type(PDB)}
        for name, d in deployments(plans[stack]).items():
            (spread,) = d["spec"]["taskManager"]["podTemplate"]["spec"]["topologySpreadConstraints"]
            assert spread["topologyKey"] == "topology.kubernetes.io/zone"
            selector = spread["labelSelector"]["matchLabels"]
            # The labels Flink's native Kubernetes mode puts on a job's TaskManager pods.
            assert selector == {"app": name, "component": "taskmanager"}
            pdb = budgets[f"{name}-taskmanager"]
            assert pdb["spec"]["selector"]["matchLabels"] == selector
            assert pdb["spec"]["maxUnavailable"] == 1


def test_sql_tables_resolve_logical_topics_through_the_registry(plans):
    for stack in REGIONAL:
        registry = plans[stack].outputs["kafkaFederation"]["topics"]
        (cm,) = [
            r for r in plans[stack].of_type(CONFIGMAP) if r.name == f"{stack}-flink-payments-sql"
        ]
        sql = cm.inputs["data"]["job.sql"]
        consume = registry["payment-events"]["regions"][stack]["consume"]
        produce = registry["payment-ledger"]["regions"][stack]["produce"]
        pattern = "|".join(re.escape(t) for t in consume["topics"])
        assert f"'topic-pattern' = '{pattern}'" in sql
        assert len(consume["topics"]) == 4  # every region's copy: all four may hold the data
        assert f"'topic' = '{produce['topic']}'" in sql
        if consume["bootstrap"]:
            # The registry's cluster; the port is the job's sign-in mechanism's (SCRAM on
            # Strimzi's workloads listener, IAM on MSK), see tests/test_flink_credentials.py.
            (servers,) = re.findall(r"'properties.bootstrap.servers' = '([^']*)'", sql)[:1]
            assert hosts(servers) == hosts(consume["bootstrap"])
        assert "'sink.delivery-guarantee' = 'exactly-once'" in sql
        # Within the brokers' transaction.max.timeout.ms (15 min): an hour fails InitProducerId
        # (tests/integration/test_workload_kafka_identity.py runs it against a real broker).
        (timeout,) = re.findall(r"'properties.transaction.timeout.ms' = '(\d+)'", sql)
        assert int(timeout) <= 15 * 60 * 1000
        assert "'properties.group.id' = 'flink-payments'" in sql
        # Columns keep the spec's order.
        assert sql.index("`payment_id`") < sql.index("`rider_id`") < sql.index("`amount_cents`")


def test_the_operator_per_region_watches_the_flink_namespace(plans):
    for stack in REGIONAL:
        (release,) = [
            r for r in plans[stack].of_type(RELEASE) if r.name == f"{stack}-flink-operator"
        ]
        inputs = release.inputs
        assert inputs["chart"] == versions.FLINK_OPERATOR_CHART_NAME
        assert inputs["repositoryOpts"] == {"repo": versions.FLINK_OPERATOR_CHART}
        assert inputs["version"] == versions.FLINK_OPERATOR_VERSION
        values = inputs["values"]
        assert values["watchNamespaces"] == ["flink"]
        assert values["image"] == {
            "repository": versions.FLINK_OPERATOR_IMAGE,
            "tag": versions.FLINK_OPERATOR_VERSION,
        }
        assert values["webhook"] == {"create": False}
        assert values["jobServiceAccount"] == {"create": False, "name": "flink"}
        # rtdi:helm applies as to every release.
        assert (inputs["atomic"], inputs["skipAwait"]) == (True, False)


def test_the_layer_is_parented_under_its_component(plans):
    for stack in REGIONAL:
        mine = [r for r in plans[stack].resources if r.name.startswith(f"{stack}-flink")]
        assert len(mine) > 10
        # Every one under the layer (its type chain holds rtdi:flink:Flink), the layer itself
        # directly under the stack like the Kafka layer.
        layer = [r for r in mine if r.type == "rtdi:flink:Flink"]
        assert [r.urn.split("::")[2] for r in layer] == ["pulumi:pulumi:Stack$rtdi:flink:Flink"]
        assert all("rtdi:flink:Flink" in r.urn.split("::")[2] for r in mine), [
            r.urn for r in mine if "rtdi:flink:Flink" not in r.urn.split("::")[2]
        ]


# --------------------------------------------------------------------------- job specs

GOOD_SURGE = yaml.safe_load((JOBS_DIR / "surge-pricing.yaml").read_text())


def _load(tmp_path: Path, specs: dict[str, dict], sql: str = "INSERT INTO surge SELECT 1;"):
    folder = tmp_path / "jobs" / "flink"
    folder.mkdir(parents=True)
    (folder / "surge-pricing.sql").write_text(sql)
    for name, spec in specs.items():
        (folder / name).write_text(yaml.safe_dump(spec))
    model = parse_global(sample_config("global"))
    return load_jobs(model.topology, model.kafka, folder)


def _edited(**changes) -> dict:
    spec = json.loads(json.dumps(GOOD_SURGE))
    for dotted, value in changes.items():
        node = spec
        *path, last = dotted.split("__")
        for part in path:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return spec


DELETE = object()
F = "jobs/flink/job.yaml"

SPEC_CASES = [
    (
        "exactly-once-interval-too-long",
        _edited(checkpointIntervalSeconds=900),
        f"{F}: checkpointIntervalSeconds = 900: an exactly-once job commits its Kafka "
        "transactions at each checkpoint, and brokers abort a transaction after 15 minutes; "
        "allowed: at most 600 seconds, or exactlyOnce: false",
    ),
    (
        "bad-name",
        _edited(name="Surge_Pricing"),
        f"{F}: name = 'Surge_Pricing': not a Flink job name; allowed: 1 to 45 lower-case letters",
    ),
    (
        "long-name",
        _edited(name="a" * 46),
        f"{F}: name = '{'a' * 46}': not a Flink job name",
    ),
    ("unknown-key", _edited(paralelism=2), f"{F}: paralelism: unknown key; allowed here: name"),
    (
        "bad-mode",
        _edited(mode="active-active"),
        f"{F}: mode = 'active-active': allowed: 'all-active' or 'active-passive'",
    ),
    (
        "sql-and-jar",
        _edited(jar="local:///opt/flink/usrlib/job.jar"),
        f"{F}: sql: a job needs exactly one of `sql` (a file) or `jar`",
    ),
    (
        "no-program",
        _edited(sql=DELETE),
        f"{F}: sql: a job needs exactly one of `sql` (a file) or `jar`",
    ),
    (
        "bad-jar",
        _edited(sql=DELETE, jar="ftp://x/job.jar"),
        f"{F}: jar = 'ftp://x/job.jar': not a job jar; allowed: local:///path/in/image.jar",
    ),
    (
        "cpu-too-small",
        _edited(taskManager={"cpu": 0.01}),
        f"{F}: taskManager.cpu = 0.01: out of range; allowed: a number of CPUs from 0.1 to 64",
    ),
    (
        "cpu-is-text",
        _edited(taskManager={"cpu": "2"}),
        f"{F}: taskManager.cpu = '2': not a number; allowed: a number of CPUs from 0.1 to 64",
    ),
    (
        "memory-too-small",
        _edited(jobManager={"memoryMib": 100}),
        f"{F}: jobManager.memoryMib = 100: too small; allowed: a whole number from 512",
    ),
    (
        "parallelism-zero",
        _edited(parallelism=0),
        f"{F}: parallelism = 0: too small; allowed: a whole number from 1 to 32,768",
    ),
    (
        # Checked before pydantic converts: YAML's `true` is not a parallelism of 1.
        "parallelism-boolean",
        _edited(parallelism=True),
        f"{F}: parallelism = true: a boolean is not a number; allowed: a whole number from 1",
    ),
    (
        "bad-upgrade-mode",
        _edited(upgradeMode="savepoints"),
        f"{F}: upgradeMode = 'savepoints': allowed: 'stateless', 'savepoint' or 'last-state'",
    ),
    (
        "exactly-once-text",
        _edited(exactlyOnce="yes"),
        f"{F}: exactlyOnce = 'yes': not a boolean; allowed: true or false",
    ),
    (
        "sql-text-set",
        _edited(sqlText="SELECT 1"),
        f"{F}: sqlText: set by rtdi from `sql`; allowed: `sql: FILE`",
    ),
    (
        "missing-sql-file",
        _edited(sql="nothere.sql"),
        f"{F}: sql = 'nothere.sql': cannot read ",
    ),
    (
        "unknown-topic",
        _edited(sources__0__topic="rides"),
        f"{F}: sources[0].topic = 'rides': not a logical topic; allowed: a name in rtdi:kafka",
    ),
    (
        "topic-not-allowed-in-a-region",
        _edited(sources__0__topic="rider-profiles"),
        f"{F}: sources[0].topic = 'rider-profiles': data class personal-eu may not be held in "
        "aws-us-east-1, onprem-dc1 (jurisdictions us); allowed: a topic whose data class",
    ),
    (
        "unknown-region",
        _edited(regions=["aws-us-west-2"]),
        f"{F}: regions[0] = 'aws-us-west-2': no such region; allowed: aws-us-east-1",
    ),
    (
        "active-passive-without-primary",
        _edited(mode="active-passive", regions=["aws-eu-west-1"]),
        f"{F}: regions = ['aws-eu-west-1']: an active-passive job runs in the primary region; "
        "allowed: a list with aws-us-east-1",
    ),
    (
        "watermark-not-a-column",
        _edited(sources__0__watermark={"column": "ts"}),
        f"{F}: sources[0].watermark.column = 'ts': not a column of the table; allowed: trip_id",
    ),
    (
        "watermark-on-sink",
        _edited(sinks__0__watermark={"column": "window_end"}),
        f"{F}: sinks[0].watermark: sinks have no watermark",
    ),
    (
        "table-twice",
        _edited(sinks__0__table="trips"),
        f"{F}: sinks[0].table = 'trips': table name used twice in the job",
    ),
    (
        "bad-column-type",
        _edited(sinks__0__columns=[{"name": "x", "type": "STRING; DROP"}]),
        f"{F}: sinks[0].columns[0].type = 'STRING; DROP': not a Flink SQL type",
    ),
    (
        "no-columns",
        _edited(sinks__0__columns=[]),
        f"{F}: sinks[0].columns = []: List should have at least 1 item",
    ),
]


def test_only_an_exactly_once_sink_asks_for_transactions_a_broker_grants():
    """Flink's Kafka sink asks for 1 h transactions unless told; brokers grant 15 min by default
    (tests/integration/test_flink_planned.py saw the planned job restart forever without it)."""
    from infra.components.flink import TRANSACTION_TIMEOUT_MS, table_ddl

    model = parse_global(sample_config("global"))
    (job,) = [j for j in load_jobs(model.topology, model.kafka) if j.name == "payments"]
    line = f"'properties.transaction.timeout.ms' = '{TRANSACTION_TIMEOUT_MS}'"
    assert TRANSACTION_TIMEOUT_MS == 15 * 60 * 1000  # Kafka's transaction.max.timeout.ms
    assert line in table_ddl(job, job.sinks[0], ["t"], {}, source=False)
    assert "transaction" not in table_ddl(job, job.sources[0], ["t"], {}, source=True)
    loose = job.model_copy(update={"exactly_once": False})
    ddl = table_ddl(loose, loose.sinks[0], ["t"], {}, source=False)
    assert "transaction.timeout" not in ddl and "'at-least-once'" in ddl


def test_a_quiet_source_partition_does_not_hold_back_event_time():
    """Event time is the slowest partition's: a source with a watermark marks partitions idle
    after a while (tests/integration/test_flink_planned.py saw a quiet copy stall every window)."""
    from infra.components.flink import SOURCE_IDLE_SECONDS, table_ddl

    model = parse_global(sample_config("global"))
    (job,) = [j for j in load_jobs(model.topology, model.kafka) if j.name == "surge-pricing"]
    line = f"'scan.watermark.idle-timeout' = '{SOURCE_IDLE_SECONDS} s'"
    assert job.sources[0].watermark is not None
    assert line in table_ddl(job, job.sources[0], ["t"], {}, source=True)
    plain = job.sources[0].model_copy(update={"watermark": None})
    assert "idle-timeout" not in table_ddl(job, plain, ["t"], {}, source=True)


def test_the_sample_job_specs_are_valid():
    model = parse_global(sample_config("global"))
    found = load_jobs(model.topology, model.kafka)
    assert {j.name: j.mode for j in found} == JOBS
    # The archive job's SQL is rtdi's (archive.py); every other job brings its own.
    assert all(j.sql_text and "INSERT INTO" in j.sql_text for j in found if j.kind != "archive")
    assert [j.name for j in found if j.kind == "archive"] == ["archive"]


@pytest.mark.parametrize("case, spec, head", SPEC_CASES, ids=[c[0] for c in SPEC_CASES])
def test_bad_job_spec_is_one_line(tmp_path, case, spec, head):
    with pytest.raises(ConfigError) as exc:
        _load(tmp_path, {"job.yaml": spec})
    lines = str(exc.value).splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(head), lines[0]


def test_two_jobs_with_one_name_are_refused(tmp_path):
    with pytest.raises(ConfigError) as exc:
        _load(tmp_path, {"a.yaml": GOOD_SURGE, "b.yaml": GOOD_SURGE})
    assert str(exc.value) == (
        "jobs/flink/b.yaml: name = 'surge-pricing': already the name of the job in "
        "jobs/flink/a.yaml"
    )


def test_a_spec_that_is_not_a_mapping_is_one_line(tmp_path):
    folder = tmp_path / "jobs" / "flink"
    folder.mkdir(parents=True)
    (folder / "x.yaml").write_text("- a\n- b\n")
    (folder / "y.yaml").write_text("name: [unclosed\n")
    model = parse_global(sample_config("global"))
    with pytest.raises(ConfigError) as exc:
        load_jobs(model.topology, model.kafka, folder)
    lines = str(exc.value).splitlines()
    assert lines[0] == "jobs/flink/x.yaml: a job spec must be a mapping of keys to values"
    assert lines[1].startswith("jobs/flink/y.yaml: cannot read the job spec: ")


def test_rtdi_plan_refuses_a_bad_job_with_exit_2(tmp_path, monkeypatch):
    folder = tmp_path / "jobs" / "flink"
    shutil.copytree(JOBS_DIR, folder)
    spec = yaml.safe_load((folder / "payments.yaml").read_text())
    spec["parallelism"] = 0
    (folder / "payments.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.setattr(jobs_module, "JOBS_DIR", folder)
    monkeypatch.chdir(ROOT)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(["plan", "global", "--out", str(tmp_path / "out")])
    assert code == EXIT_BAD_INPUT
    assert out.getvalue() == ""
    assert err.getvalue().strip().splitlines() == [
        "jobs/flink/payments.yaml: parallelism = 0: too small; allowed: a whole number from 1 "
        "to 32,768 (Flink's maximum parallelism)"
    ]


# --------------------------------------------------------------------------- admission


def _admitted(plans) -> dict:
    (d,) = [v for k, v in deployments(plans["aws-us-east-1"]).items() if k == "payments"]
    return json.loads(json.dumps(d["spec"]))


def _rules(name: str, spec: dict) -> list[str]:
    return [str(i) for i in admission_issues(name, spec, "jobs/flink (payments)")]


def test_planned_deployments_pass_the_operators_admission_rules(plans):
    for stack in REGIONAL:
        for name, d in deployments(plans[stack]).items():
            assert _rules(name, d["spec"]) == []


@pytest.mark.parametrize(
    "edit, expected",
    [
        (
            lambda s: s,
            "jobs/flink (payments): name = 'Payments': not a name the Flink operator accepts",
        ),
        (
            lambda s: s["flinkConfiguration"].update({"kubernetes.cluster-id": "x"}),
            "jobs/flink (payments): kubernetes.cluster-id = 'x': set by the Flink operator",
        ),
        (
            lambda s: s["flinkConfiguration"].pop("execution.checkpointing.dir"),
            "jobs/flink (payments): upgradeMode = 'savepoint': a stateful upgrade mode needs "
            "execution.checkpointing.dir",
        ),
        (
            lambda s: s["flinkConfiguration"].pop("execution.checkpointing.savepoint-dir"),
            "jobs/flink (payments): upgradeMode = 'savepoint': savepoint mode needs "
            "execution.checkpointing.savepoint-dir",
        ),
        (
            lambda s: s["flinkConfiguration"].pop("high-availability.type"),
            "jobs/flink (payments): jobManager.replicas = 2: more than one JobManager needs "
            "high-availability.type kubernetes",
        ),
        (
            lambda s: s["job"].update({"savepointRedeployNonce": 1}),
            "jobs/flink (payments): job.savepointRedeployNonce = 1: a savepoint redeploy needs "
            "job.initialSavepointPath",
        ),
        (
            lambda s: [
                s["job"].update({"upgradeMode": "last-state"}),
                s["flinkConfiguration"].pop("high-availability.type"),
                s["jobManager"].update({"replicas": 1}),
            ],
            "jobs/flink (payments): upgradeMode = 'last-state': last-state needs Kubernetes HA",
        ),
    ],
    ids=[
        "name",
        "forbidden-key",
        "no-checkpoint-dir",
        "no-savepoint-dir",
        "standby-without-ha",
        "nonce-without-path",
        "last-state-without-ha",
    ],
)
def test_each_admission_rule_refuses_in_one_line(plans, edit, expected):
    spec = _admitted(plans)
    edit(spec)
    name = "Payments" if expected.endswith("accepts") else "payments"
    found = _rules(name, spec)
    assert len(found) == 1, found
    assert found[0].startswith(expected), found[0]


# --------------------------------------------------------------------------- variants


def _regional(plans, cfg):
    from infra.plan.engine import run_stack
    from infra.program import main

    return run_stack(cfg, main, {"global": plans["global"].values})


def test_an_s3_compatible_store_gets_its_endpoint_and_keys(plans):
    """On-prem S3 (Ceph RGW, MinIO): the endpoint and path-style access in the Flink
    configuration, the keys from the Secret the target creates, no web-identity provider."""
    from test_target_onprem import s3_config

    plan = _regional(plans, s3_config())
    for name, d in deployments(plan).items():
        conf = d["spec"]["flinkConfiguration"]
        assert conf["s3.endpoint"] == "https://rgw.dc1.acme.internal"
        assert conf["s3.path.style.access"] == "true"
        assert "fs.s3a.aws.credentials.provider" not in conf
        base = "s3p://rtdi-dc1/onprem-dc1/flink-state"
        assert conf["execution.checkpointing.dir"] == f"{base}/{name}/checkpoints"
        (container,) = d["spec"]["podTemplate"]["spec"]["containers"]
        refs = {
            e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
            for e in container["env"]
            if "valueFrom" in e
        }
        assert {k: v for k, v in refs.items() if k.startswith("AWS_")} == {
            "AWS_ACCESS_KEY_ID": f"flink-{name}-object-store",
            "AWS_SECRET_ACCESS_KEY": f"flink-{name}-object-store",
        }


def test_an_air_gapped_site_pulls_the_operator_and_the_runner_from_its_mirror(plans):
    from test_sources import MIRROR, with_values

    plan = _regional(plans, with_values("onprem-dc1", imageRegistry=MIRROR))
    (release,) = [r for r in plan.of_type(RELEASE) if r.name == "onprem-dc1-flink-operator"]
    image = release.inputs["values"]["image"]
    assert image["repository"] == f"{MIRROR}/apache/flink-kubernetes-operator"
    assert image["tag"] == versions.FLINK_OPERATOR_VERSION
    for d in deployments(plan).values():
        assert d["spec"]["image"] == f"{MIRROR}/{versions.FLINK_SQL_RUNNER_HDFS_IMAGE}"


def test_a_regional_stack_refuses_a_published_job_its_region_may_not_run(plans):
    """A global stack published by an older rtdi (or edited by hand) is checked again: the
    region never declares a job over a topic its data classes do not allow."""
    published = json.loads(json.dumps(plans["global"].values))
    (payments,) = [j for j in published["rtdi"]["flinkJobs"] if j["name"] == "payments"]
    payments["sources"][0]["topic"] = "rider-profiles"
    with pytest.raises(Exception) as exc:
        _regional_with(published, sample_config("aws-us-east-1"))
    assert str(exc.value) == (
        "jobs/flink (payments): sources[0].topic = 'rider-profiles': not a topic region "
        "aws-us-east-1 may hold; allowed: topics of its data classes"
    )


def _regional_with(global_values, cfg):
    from infra.plan.engine import run_stack
    from infra.program import main

    return run_stack(cfg, main, {"global": global_values})
