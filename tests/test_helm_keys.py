"""Unit tests of the Helm values key-walker (tests/helm_keys.py)."""

from __future__ import annotations

import yaml

from helm_keys import (
    FREE_FORM,
    chart_name,
    defaults_file,
    is_free_form,
    release_problems,
    unknown_keys,
)

DEFAULTS = {
    "replicas": 1,
    "watchNamespaces": [],
    "image": {"registry": "", "name": "operator", "tag": ""},
    "resources": {"limits": {"memory": "384Mi"}},
    "podAnnotations": {},
    "extra": {"configs": "a=b"},
    "tolerations": [],
    "maxUnavailable": None,
    "controller": {"extra": {"configs": ""}, "jvmOpts": "-Xmx1G", "podAnnotations": {}},
}


def test_known_keys_pass():
    values = {
        "replicas": 3,
        "watchNamespaces": ["kafka", "other"],
        "image": {"registry": "quay.io", "tag": "x"},
        "controller": {"jvmOpts": "-Xmx4G"},
    }
    assert unknown_keys(values, DEFAULTS) == []


def test_free_form_maps_are_not_descended():
    values = {
        "resources": {
            "requests": {"cpu": "200m"},
            "limits": {"cpu": "1"},
        },  # requests is not in the defaults
        "podAnnotations": {"prometheus.io/scrape": "true"},
        "controller": {"podAnnotations": {"a": "b"}, "extra": {"configs": {"any.key": 1}}},
        "tolerations": [{"key": "dedicated", "operator": "Exists"}],
    }
    assert unknown_keys(values, DEFAULTS) == []


def test_typos_are_reported_with_their_full_path():
    values = {
        "replica": 3,
        "image": {"registy": "quay.io", "tag": "x"},
        "controller": {"jvmOpt": "-Xmx4G", "extra": {"configz": "x"}},
    }
    assert unknown_keys(values, DEFAULTS) == [
        "replica",
        "image.registy",
        "controller.jvmOpt",
        "controller.extra.configz",
    ]


def test_free_form_key_must_still_exist():
    assert unknown_keys({"nodeSelector": {"disk": "ssd"}}, DEFAULTS) == ["nodeSelector"]


def test_a_map_where_the_chart_has_a_scalar_is_reported():
    assert unknown_keys({"replicas": {"min": 1}, "maxUnavailable": {"x": 1}}, DEFAULTS) == [
        "replicas.min",
        "maxUnavailable.x",
    ]


def test_lists_are_compared_at_the_key_level_only():
    assert unknown_keys({"watchNamespaces": [{"anything": 1}]}, DEFAULTS) == []
    assert unknown_keys({"watchNamespace": ["kafka"]}, DEFAULTS) == ["watchNamespace"]


def test_free_form_matches_names_and_dotted_suffixes():
    assert "extra.configs" in FREE_FORM and "env" in FREE_FORM
    assert is_free_form(("controller", "extra", "configs"))
    assert is_free_form(("labels",)) and is_free_form(("server", "env"))
    assert not is_free_form(("controller", "configs")) and not is_free_form(("extra",))


def test_chart_names_and_values_files(tmp_path):
    assert (
        chart_name("oci://quay.io/strimzi-helm/strimzi-kafka-operator") == "strimzi-kafka-operator"
    )
    assert (
        chart_name("flink-operator-repo/flink-kubernetes-operator") == "flink-kubernetes-operator"
    )
    assert chart_name("trino") == "trino"
    assert (
        defaults_file(tmp_path, "oci://quay.io/strimzi-helm/strimzi-kafka-operator", "1.2.0").name
        == "strimzi-kafka-operator-1.2.0.values.yaml"
    )


def test_release_problems(tmp_path):
    (tmp_path / "demo-1.0.0.values.yaml").write_text(yaml.safe_dump(DEFAULTS))
    good = {
        "chart": "repo/demo",
        "version": "1.0.0",
        "values": {"replicas": 2, "resources": {"requests": {}}},
    }
    assert release_problems(good, tmp_path) == []
    bad = {**good, "values": {"replicaz": 2}}
    assert release_problems(bad, tmp_path) == [
        "demo 1.0.0: replicaz: not a key of the chart's default values"
    ]
    missing = {**good, "version": "2.0.0"}
    (problem,) = release_problems(missing, tmp_path)
    assert (
        problem.startswith("demo 2.0.0: no default values demo-2.0.0.values.yaml")
        and "demo-1.0.0.values.yaml" in problem
    )
