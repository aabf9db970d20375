# The two commands of the README. Both create .venv and install everything on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test proof install system-tools clean-data env

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: torchvision only imports beside exactly this build.
	$(PY) -m pip install --quiet 'torch==2.14.1' 'torchvision==0.29.1'
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Everything on this machine: embedded PostgreSQL and Redis unless DATABASE_URL/REDIS_URL are set.
run: $(STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(VENV)/bin/evalboard up

# Debian packages the tests use: docker-compose validates compose.yaml (no engine needed),
# chromium renders the leaderboard in the browser test, bubblewrap confines the evaluation child.
system-tools:
	@missing=""; command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
	if [ -n "$$missing" ]; then echo "installing$$missing"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

# The whole suite against real PostgreSQL and Redis (DATABASE_URL/REDIS_URL, else embedded ones).
test: $(STAMP) system-tools
	$(PY) -m pytest

# Load, faults, fuzzing and hostile input against real services; writes benchmarks/REPORT.md.
# Not part of `make test`: it takes a quarter of an hour or more. Its client tools get their own venv.
proof: $(STAMP) system-tools
	test -x .venv-proof/bin/locust || ($(PYTHON) -m venv .venv-proof && \
	  .venv-proof/bin/python -m pip install --quiet schemathesis locust)
	$(PY) benchmarks/proof.py

# compose.yaml's passwords: .env with strong random ones (256 bits each, readable by you only).
# An existing .env is kept: new passwords would lock compose out of its existing database volume.
env:
	@if [ -e .env ]; then echo ".env exists; kept (remove it first to make new passwords)"; else \
	  umask 077 && $(PYTHON) -c 'import secrets; print(f"POSTGRES_PASSWORD={secrets.token_hex(32)}\nREDIS_PASSWORD={secrets.token_hex(32)}\nS3_ACCESS_KEY=evalboard-{secrets.token_hex(8)}\nS3_SECRET_KEY={secrets.token_hex(32)}\n# EVALBOARD_BIND=127.0.0.1  (the address API and board are published on)")' > .env && \
	  echo "wrote .env: PostgreSQL and Redis passwords and object store keys for docker compose"; fi

clean-data:
	rm -rf .evalboard
