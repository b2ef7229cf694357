# `make demo` / `make test` / `make bench` each set up .venv (pinned by constraints.txt) first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test bench bench-realtime bench-eager-swing bench-compile-vectors clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt setuptools
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt --no-build-isolation -e '.[torch,test,analysis,deploy,recordings,openvino]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/smmcl demo

test: $(STAMP)
	$(BIN)/pytest

# Pixel agreement needs the demo's trained model: train it first if it is not there.
bench: $(STAMP)
	test -f runs/demo/smmcl/model.safetensors || $(BIN)/smmcl demo
	$(BIN)/python benchmarks/run.py --compile lead
	$(BIN)/python benchmarks/realtime.py
	$(BIN)/python benchmarks/eager_swing.py
	$(BIN)/python benchmarks/compile_vectors.py

# Frames per second end to end over a ROS 2 bag (MSCAN-T/S/B + LightHam, 240x320 and 480x640, every backend);
# trains its own models (cached under runs/bench-realtime/). Run it on an otherwise idle machine.
bench-realtime: $(STAMP)
	$(BIN)/python benchmarks/realtime.py

# Why fp32 eager PyTorch swings from call to call: one suspect per condition, each in a fresh process (about 20 min).
bench-eager-swing: $(STAMP)
	$(BIN)/python benchmarks/eager_swing.py

# Whether Inductor's CPU vector width computes a compiled model correctly here (crashes are counted, not fatal).
bench-compile-vectors: $(STAMP)
	$(BIN)/python benchmarks/compile_vectors.py

clean:
	rm -rf $(VENV) runs build src/*.egg-info
