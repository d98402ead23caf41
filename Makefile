# The one entry point: CI (.ci/run) calls `make test`; the README shows `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The oldest supported libmongocrypt (1.13), built and tested in a venv of its own as a system
# library through pkg-config (MONGOCRYPT_USE_SYSTEM_LIBMONGOCRYPT=1), the way packagers build.
FALLBACK_VENDOR := vendor/libmongocrypt-fallback
FALLBACK_VENV := .venv-fallback
# The pymongo versions the drop-in facade is tested with: the current release and the oldest we claim.
PYMONGO_CURRENT := 4.20.1
PYMONGO_OLDEST := 4.16.0
OLDEST_VENV := .venv-pymongo-oldest
DROPIN_TESTS := tests/unit/test_facade.py tests/integration/test_pymongo_dropin.py \
	tests/integration/test_pymongo_async.py tests/integration/test_pymongo_kms_faults.py
BUILD_INPUTS := pyproject.toml setup.py build_ffi.py $(wildcard bindings/cdefs/*.h bindings/csrc/*.c) \
	src/mongocrypt/_version.py
# The aarch64 wheel: cross-built here, tested under qemu-aarch64 (see docs/wheels.md).
AARCH64 := build/aarch64
AARCH64_VENDOR := vendor/libmongocrypt-aarch64
# arm64 Debian packages (with their dependencies): what the cross build compiles and links
# against, and the Python the emulated tests run on.
SYSROOT_BUILD_PACKAGES := libc6-dev libssl-dev libpython3.11-dev
SYSROOT_RUN_PACKAGES := python3.11-venv

.PHONY: demo test build lint gen gen-check spec-coverage spec-coverage-check docs bench pytest \
	test-fallback test-pymongo-oldest wheel sdist test-wheel test-sdist deps vendor wheel-aarch64 \
	test-wheel-aarch64 deps-aarch64 fuzz-long leaks-long clean

demo: build
	$(PY) examples/demo.py

test: build lint docs pytest test-fallback test-pymongo-oldest test-wheel test-wheel-aarch64 test-sdist

# $(call apt-install,PACKAGES): install the Debian packages that are missing (reading the package
# indices first when apt has none yet, as on a fresh container), or say what to run.
apt-install = dpkg -s $(1) >/dev/null 2>&1 || { \
	echo "installing $(1)"; \
	{ apt-get install -y -q --no-install-recommends $(1) >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && \
	    apt-get install -y -q --no-install-recommends $(1) >/dev/null; }; } || \
	{ echo "could not install them: run 'apt-get install $(1)' as root"; exit 1; }; }

# Debian packages the build needs beyond Python and gcc: libcrypto's link-time files.
deps:
	@$(call apt-install,libssl-dev)

# Host (amd64) packages for the aarch64 wheel: Debian's cross gcc and user-mode qemu.
deps-aarch64:
	@$(call apt-install,gcc-aarch64-linux-gnu qemu-user-static)

vendor: vendor/libmongocrypt/pins.json

vendor/libmongocrypt/pins.json: vendor/pins.toml vendor/fetch.py
	$(PYTHON) vendor/fetch.py

$(FALLBACK_VENDOR)/pins.json: vendor/pins.toml vendor/fetch.py
	$(PYTHON) vendor/fetch.py --pin fallback --dest $(FALLBACK_VENDOR)

build: $(VENV)/.built

$(VENV)/.built: vendor/libmongocrypt/pins.json $(BUILD_INPUTS) | deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,docs]' 'pymongo==$(PYMONGO_CURRENT)'
	touch $@

LINT_PATHS := src tests docs/_hooks bench examples tools build_ffi.py setup.py vendor/fetch.py

lint: build gen-check spec-coverage-check
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy
	$(VENV)/bin/vulture

# The synchronous modules are generated from their asyncio sources (tools/gen_sync.py lists them).
gen:
	$(PYTHON) tools/gen_sync.py

# Fails when a generated module is stale; needs no build.
gen-check:
	$(PYTHON) tools/gen_sync.py --check

# docs/spec-coverage.md is generated from the tests' requirement markers (tools/spec_coverage.py).
spec-coverage:
	$(PYTHON) tools/spec_coverage.py

# Fails when the table is stale, a marker names an unknown ID, or an ID has no test and no reason.
spec-coverage-check:
	$(PYTHON) tools/spec_coverage.py --check

# The documentation site (build/site), warnings as errors; its examples run in tests/integration/test_docs.py.
docs: build spec-coverage
	$(VENV)/bin/mkdocs build --strict

pytest: build
	$(PY) -m pytest

FALLBACK_BUILD_ENV := MONGOCRYPT_USE_SYSTEM_LIBMONGOCRYPT=1 \
	PKG_CONFIG_PATH=$(CURDIR)/$(FALLBACK_VENDOR)/lib/pkgconfig

test-fallback: $(FALLBACK_VENDOR)/pins.json $(BUILD_INPUTS) | deps
	@command -v pkg-config >/dev/null || { echo "test-fallback needs pkg-config (apt-get install pkgconf)"; exit 1; }
	test -x $(FALLBACK_VENV)/bin/python || $(PYTHON) -m venv $(FALLBACK_VENV)
	$(FALLBACK_VENV)/bin/python -m pip install -q --upgrade pip
	# Dependencies first, then a forced rebuild of mongocrypt itself, both against the fallback.
	$(FALLBACK_BUILD_ENV) $(FALLBACK_VENV)/bin/python -m pip install -q '.[test]'
	$(FALLBACK_BUILD_ENV) $(FALLBACK_VENV)/bin/python -m pip install -q --force-reinstall --no-deps .
	MONGOCRYPT_EXPECT_LIBMONGOCRYPT=fallback MONGOCRYPT_FUZZ_TOTAL=100000 MONGOCRYPT_CONCURRENCY_SECONDS=5 \
		$(FALLBACK_VENV)/bin/python -m pytest -q

# The drop-in suites again, on the oldest pymongo we support, from an installed (not editable) build.
test-pymongo-oldest: vendor/libmongocrypt/pins.json $(BUILD_INPUTS) | deps
	test -x $(OLDEST_VENV)/bin/python || $(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install -q --upgrade pip
	$(OLDEST_VENV)/bin/python -m pip install -q '.[test]' 'pymongo==$(PYMONGO_OLDEST)'
	$(OLDEST_VENV)/bin/python -m pip install -q --force-reinstall --no-deps .
	$(OLDEST_VENV)/bin/python -m pytest -q $(DROPIN_TESTS)

# The x86_64 wheel CI publishes: built as cibuildwheel builds it, repaired by auditwheel into wheels/.
wheel: build
	rm -rf build/dist wheels/*.whl
	$(PY) -m build --wheel --outdir build/dist .
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/auditwheel repair -w wheels build/dist/*.whl
	$(VENV)/bin/auditwheel show wheels/*.whl

# The aarch64 wheel, cross-built against an arm64 sysroot and repaired into wheels/aarch64/. The
# fetch and sysroot steps do nothing when what they made is up to date.
wheel-aarch64: build | deps-aarch64
	$(PYTHON) vendor/fetch.py --arch arm64 --dest $(AARCH64_VENDOR)
	$(PYTHON) tools/sysroot.py --dest $(AARCH64)/sysroot-build $(SYSROOT_BUILD_PACKAGES)
	PYTHON=$(PYTHON) .ci/wheel-aarch64

# The wheel installed into a fresh venv with no compiler, away from the source tree.
LIBMONGOCRYPT_VERSION = $(shell $(PYTHON) -c "import tomllib; \
	pin = tomllib.load(open('vendor/pins.toml', 'rb'))['libmongocrypt-dev']['primary']; \
	print(pin['version'].split('-')[0])")
test-wheel: wheel
	PYTHON=$(PYTHON) PYMONGO_VERSION=$(PYMONGO_CURRENT) LIBMONGOCRYPT_VERSION=$(LIBMONGOCRYPT_VERSION) \
		.ci/test-wheel

# The aarch64 wheel's smoke and drop-in suites in an arm64 venv under qemu-aarch64 (peers native).
test-wheel-aarch64: wheel-aarch64
	$(PYTHON) tools/sysroot.py --dest $(AARCH64)/sysroot-run $(SYSROOT_RUN_PACKAGES)
	ARCH=aarch64 PYTHON=$(PYTHON) PYMONGO_VERSION=$(PYMONGO_CURRENT) \
		LIBMONGOCRYPT_VERSION=$(LIBMONGOCRYPT_VERSION) .ci/test-wheel

# The sdist: check-manifest compares it with git, then it must build in a fresh venv, fetching the
# pinned libmongocrypt itself.
sdist: build
	$(VENV)/bin/check-manifest
	rm -f wheels/*.tar.gz
	$(PY) -m build --sdist --outdir wheels .

test-sdist: sdist
	rm -rf build/sdist-venv
	$(PYTHON) -m venv build/sdist-venv
	build/sdist-venv/bin/python -m pip install -q --upgrade pip
	cd build && sdist-venv/bin/python -m pip install -q ../wheels/mongocrypt-*.tar.gz
	cd build && sdist-venv/bin/python -c "import mongocrypt; \
		assert mongocrypt.is_crypto_available(); print('sdist build links', mongocrypt.libmongocrypt_version())"

# Side-by-side benchmarks (incumbent in bench/.venv-incumbent, the C loop, SecantusDB); writes
# docs/benchmarks.md (~6 min). `make bench BENCH_ARGS=--quick` (~1.5 min) writes
# bench/build/benchmarks-quick.md instead.
bench: build
	$(PY) bench/run.py $(BENCH_ARGS)

# Long reliability runs, outside `make test` (~90 s each here). fuzz-long feeds 1M inputs and merges
# the ones that reach new coverage into tests/fuzz/corpus/; leaks-long repeats 1M explicit and 100k
# automatic decryptions and checks RSS and traced memory stay flat.
fuzz-long: build
	$(PY) tests/fuzz/run.py --total 1000000 --update-corpus --artifacts build/fuzz-artifacts

leaks-long: build
	MONGOCRYPT_LEAK_EXPLICIT=1000000 MONGOCRYPT_LEAK_AUTO=100000 MONGOCRYPT_LEAK_PYMONGO=100000 \
		$(PY) -m pytest -q -s tests/integration/test_leaks.py -k memory_stays_flat

clean:
	rm -rf $(VENV) $(FALLBACK_VENV) $(OLDEST_VENV) build bench/build bench/.venv-incumbent src/mongocrypt/*.so src/*.egg-info \
		vendor/libmongocrypt vendor/libmongocrypt-fallback $(AARCH64_VENDOR) vendor/.apt
