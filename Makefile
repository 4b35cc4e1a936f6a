# Two commands on a fresh machine: `make plan` (the main job, offline) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: plan test bench clean kafka-jars

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

plan: $(STAMP)
	$(BIN)/rtdi plan --all

# Apache Kafka's jars (infra/versions.py's KAFKA_VERSION) for the integration tests: Maven, once, cached in .cache/kafka.
kafka-jars: $(STAMP)
	$(BIN)/python tests/integration/kafka_jars.py

test: $(STAMP) kafka-jars
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/plan_scaling.py

clean:
	rm -rf $(VENV) .rtdi
