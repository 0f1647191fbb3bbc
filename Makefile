# The two set-up commands of README.md:
#   make demo   installs, then trains a small model on a built-in track, exports it to int8
#               TFLite and drives it in the hardware-in-the-loop simulator.
#   make test   installs the test needs (Python, Debian and npm packages) and runs every test.
# Each creates or reuses the virtual environment .venv by itself.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo-out

.PHONY: demo test install test-deps lint

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[train,car,dev,bench]'
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
