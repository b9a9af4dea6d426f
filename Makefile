# The two commands of the README, each doing its own set-up on a fresh Debian machine:
#   make demo   the main job on the embedded default corpus
#   make test   the whole test suite (SQLite and a PostgreSQL server the tests start themselves)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Debian packages: speech synthesis for the corpus, a PostgreSQL server for the tests, a C++ compiler,
# jemalloc (the trainer's allocator: glibc's fragments under changing batch shapes),
# what KenLM's lmplz/build_binary are built with (they are not on PyPI), LibreOffice's Vietnamese help
# (the punctuation model's prose) and GNOME's (its held-out check), and the headless browser of the web page's test
DEBS   := espeak-ng postgresql g++ python3-venv python3-dev cmake libjemalloc2 libboost-program-options-dev \
          libboost-system-dev libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev \
          libreoffice-help-vi gnome-user-docs chromium chromium-driver
KENLM  := 0.3.0
STAMP  := $(VENV)/.installed

.PHONY: demo test bench system venv lmplz clean

demo: venv
	$(VENV)/bin/vasr demo

# the suite (every kernel test on each backend: cython, numba, python); the kernel tests on the pure
# build a machine without a compiler gets (numba chosen); the wheel installed outside the checkout
test: venv
	$(PY) -m pytest -q
	@echo "== kernel tests again on a pure build (VASR_PUREPYTHON=1: numba, then the references) =="
	rm -rf build/pure && VASR_PUREPYTHON=1 $(PY) -m pip install -q --no-deps --no-build-isolation --target build/pure .
	# -S skips the venv's .pth files, so the editable install cannot supply the compiled modules
	VASR_PUREPYTHON=1 PYTHONSAFEPATH=1 PYTHONPATH=build/pure:$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
		$(PY) -S -m pytest -q -p no:cacheprovider tests/test_kernels_pure.py tests/test_fbank.py tests/test_ctc.py \
		tests/test_levenshtein.py tests/test_dispatch.py
	@echo "== the wheel in a fresh venv outside the checkout: synth, train, export, transcribe, bench =="
	bash .ci/wheel-smoke $(PY)

bench: venv
	$(VENV)/bin/vasr bench --out bench-report

system:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  elif command -v sudo >/dev/null; then \
	    echo "installing Debian packages with sudo:$$missing"; \
	    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages:$$missing -- run as root or: sudo apt-get install$$missing" >&2; exit 1; \
	  fi; \
	fi

venv: system $(STAMP) $(VENV)/bin/lmplz

lmplz: $(VENV)/bin/lmplz

# KenLM's ARPA builder, compiled from the same sdist as the kenlm query module (about 3 min on 2 cores)
$(VENV)/bin/lmplz: | $(STAMP)
	tmp=$$(mktemp -d) && \
	$(PY) -m pip download -q --no-deps --no-binary kenlm --no-build-isolation kenlm==$(KENLM) -d $$tmp && \
	tar xzf $$tmp/kenlm-$(KENLM).tar.gz -C $$tmp && \
	cmake -S $$tmp/kenlm-$(KENLM) -B $$tmp/build -DCMAKE_BUILD_TYPE=Release >/dev/null && \
	$(MAKE) -s -C $$tmp/build -j$$(nproc) lmplz build_binary >/dev/null && \
	cp $$tmp/build/bin/lmplz $$tmp/build/bin/build_binary $(VENV)/bin/ && rm -rf $$tmp

# torch is pinned first: 2.13.0 is the CPU build this project is tested with (a bare 'torch' pulls CUDA builds)
$(STAMP): pyproject.toml setup.py $(wildcard kernels/*.pyx)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools>=77" wheel 'cython>=3.0' numpy
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q --no-build-isolation -e '.[test]'
	touch $@

clean:
	rm -rf build $(VENV) .pytest_cache kernels/*.so kernels/*.c kernels/*.cpp
