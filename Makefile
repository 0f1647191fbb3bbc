# The two set-up commands of README.md:
#   make demo   installs, then trains a small model on a built-in track, exports it to int8
#               TFLite and drives it in the hardware-in-the-loop simulator.
#   make test   installs the test needs (Python, Debian and npm packages) and runs every test.
# Both install from the lock, tools/requirements-all.txt (exact versions and hashes), into
# .venv via tools/install.sh. `make lock` re-resolves it on purpose (tools/lock.sh: the
# newest versions the ranges in pyproject.toml allow); commit the result only with
# `make test` green.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo-out

.PHONY: demo test install test-deps lint lock

$(STAMP): pyproject.toml tools/requirements-all.txt tools/requirements-uv.txt tools/install.sh
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

lock:
	bash tools/lock.sh
	@echo "lock re-resolved; run 'make test' before committing tools/requirements-*.txt"
