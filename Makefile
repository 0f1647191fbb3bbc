# The two set-up commands of README.md:
#   make demo   installs, then trains a small model on a built-in track, exports it to int8
#               TFLite and drives it in the hardware-in-the-loop simulator.
#   make test   installs the test needs (Python, Debian and npm packages) and runs every test.
# Both install from uv.lock (exact versions and hashes) into .venv via tools/install.sh.
# `make lock` re-resolves uv.lock on purpose (newest versions the ranges in pyproject.toml
# allow); commit the result only with `make test` green.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo-out
UV := build/uv/bin/uv

.PHONY: demo test install test-deps lint lock

$(STAMP): pyproject.toml uv.lock tools/requirements-uv.txt tools/install.sh
	VENV=$(VENV) bash tools/install.sh
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	PATH="$(abspath $(VENV))/bin:$$PATH" bash tools/demo.sh $(DEMO_DIR)

test-deps: $(STAMP)
	bash tools/install_test_deps.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy vehicle calibration tracks sim2real trainer tools
	bash tools/check_firmware.sh

test: test-deps lint
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m pytest -q -p no:cacheprovider

lock: $(STAMP)
	$(UV) lock --upgrade
	@echo "uv.lock re-resolved; run 'make test' before committing it"
