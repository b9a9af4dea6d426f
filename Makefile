# The two commands of the README, each doing its own set-up on a fresh Debian machine:
#   make demo   the main job on the embedded default corpus
#   make test   the whole test suite (SQLite and a PostgreSQL server the tests start themselves)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Debian packages: speech synthesis for the corpus, a PostgreSQL server for the tests, a C++ compiler
DEBS   := espeak-ng postgresql g++ python3-venv python3-dev
STAMP  := $(VENV)/.installed

.PHONY: demo test bench system venv clean

demo: venv
	$(VENV)/bin/vasr demo

test: venv
	$(PY) -m pytest -q
	@echo "== kernel tests again on a pure-Python build (VASR_PUREPYTHON=1) =="
	rm -rf build/pure && VASR_PUREPYTHON=1 $(PY) -m pip install -q --no-deps --no-build-isolation --target build/pure .
	# -S skips the venv's .pth files, so the editable install cannot supply the compiled modules
	VASR_PUREPYTHON=1 PYTHONSAFEPATH=1 PYTHONPATH=build/pure:$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
		$(PY) -S -m pytest -q -p no:cacheprovider tests/test_kernels_pure.py tests/test_fbank.py tests/test_ctc.py \
		tests/test_levenshtein.py

bench: venv
	$(VENV)/bin/vasr bench --out bench-report

system:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  elif command -v sudo >/dev/null; then \
	    echo "installing Debian packages with sudo:$$missing"; \
	    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages:$$missing -- run as root or: sudo apt-get install$$missing" >&2; exit 1; \
	  fi; \
	fi

venv: system $(STAMP)

# torch is pinned first: 2.13.0 is the CPU build this project is tested with (a bare 'torch' pulls CUDA builds)
$(STAMP): pyproject.toml setup.py $(wildcard kernels/*.pyx)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools>=77" wheel 'cython>=3.0' numpy
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q --no-build-isolation -e '.[test]'
	touch $@

clean:
	rm -rf build $(VENV) .pytest_cache kernels/*.so kernels/*.c kernels/*.cpp
