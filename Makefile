# Kiln's two entry points. Both install missing Debian packages, configure
# and build as needed:
#   make demo    build, then run the demo
#   make check   build, then run every test
# Other targets: build, docs (regenerate docs/reference from ODS), clean.

BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
LLVM_PREFIX ?= /usr/lib/llvm-22

export CCACHE_BASEDIR := $(CURDIR)

CMAKE_FLAGS = -G Ninja \
  -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
  -DCMAKE_PREFIX_PATH=$(LLVM_PREFIX) \
  -DCMAKE_C_COMPILER=clang-22 \
  -DCMAKE_CXX_COMPILER=clang++-22 \
  -DLLVM_USE_LINKER=lld \
  -DLLVM_EXTERNAL_LIT=$(LLVM_PREFIX)/bin/lit

.PHONY: all deps configure build demo check docs clean

all: build

deps:
	@scripts/setup-deps.sh

$(BUILD_DIR)/build.ninja:
	@$(MAKE) --no-print-directory deps
	cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS)

configure: deps $(BUILD_DIR)/build.ninja

build: configure
	ninja -C $(BUILD_DIR) -j$(JOBS)

demo: build
	@scripts/demo.sh $(BUILD_DIR)

check: build
	ninja -C $(BUILD_DIR) -j$(JOBS) check-kiln

docs: configure
	ninja -C $(BUILD_DIR) kiln-doc

clean:
	rm -rf $(BUILD_DIR)
