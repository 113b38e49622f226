# shardpipe — see README.md.  `make` builds, `make test` installs what is
# missing, builds and runs every test, `make demo` converts Fashion-MNIST.

BUILD   ?= build
CC      ?= cc
PKGS    := hdf5 libarchive libzstd jansson libxxhash libcrypto libcurl libpng libjpeg zlib
# OpenBLAS built on OpenMP: the trainer shares batches out over OpenMP threads
# and calls the gemms inside them, where this variant runs them single-threaded
# in the same thread pool. (The pthread variant keeps idle workers of its own
# spinning on the cores those threads need; the serial one is not safe to call
# from several threads at once.) Not on the default library path.
BLAS_DIR := /usr/lib/$(shell $(CC) -print-multiarch 2>/dev/null)/openblas-openmp
BLAS    := $(shell PKG_CONFIG_PATH=$(BLAS_DIR)/pkgconfig pkg-config --cflags --libs openblas 2>/dev/null) \
           -Wl,-rpath,$(BLAS_DIR)
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla -Werror
OPT     ?= -O2 -g
SAN     ?=
CFLAGS  := -std=c11 $(OPT) $(WARN) $(SAN) -I. -Iinclude $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
           $(filter -I%,$(BLAS))
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) $(filter-out -I%,$(BLAS)) -lm -lpthread
LDFLAGS := $(SAN) -fopenmp -Wl,--as-needed

LIB_SRC := common/sp_common.c common/sp_atomic.c common/sp_hash.c common/sp_xxh.c common/sp_xxh_avx2.c \
           formats/recstream.c formats/idx.c formats/cifar.c formats/image.c formats/matv5.c formats/resample.c \
           formats/h5zstd.c \
           pipeline/stage.c pipeline/datasets.c pipeline/unpack.c pipeline/decode.c pipeline/fetch.c pipeline/labels.c \
           pipeline/resize.c pipeline/normalize.c pipeline/parallel.c \
           shards/h5util.c shards/manifest.c shards/shard_writer.c shards/shard_reader.c shards/verify.c \
           shards/shuffle.c shards/inspect.c shards/reader.c
# the neural-network library of the trainer: in the static library, not in libshardpipe-reader
NN_SRC  := nn/layers.c nn/net.c nn/data.c
CLI_SRC := common/sp_cli.c
TOOLS   := sp-fetch sp-unpack sp-decode sp-resize sp-normalize sp-shard sp-cat sp-verify sp-inspect sp-train sp-eval
UNIT    := test_recstream test_idx test_h5zstd test_resample
# checks that need fixtures made first: run by a tool test (tests/tools/test_nn.sh)
UNIT_FIX := nn_reference
FUZZ    := fuzz_recstream fuzz_idx fuzz_unpack fuzz_image fuzz_mat fuzz_manifest fuzz_cifar fuzz_labels

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(NN_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/manifests.o
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
LIB     := $(BUILD)/lib/libshardpipe.a
BINS    := $(TOOLS:%=$(BUILD)/bin/%)
UNITS   := $(UNIT:%=$(BUILD)/tests/%) $(UNIT_FIX:%=$(BUILD)/tests/%)
FUZZS   := $(FUZZ:%=$(BUILD)/tests/%)
# Fuzz targets link with the replay driver (make test) or libFuzzer (make fuzz).
FUZZ_DRIVER  ?= $(BUILD)/obj/tests/fuzz/replay_main.o
FUZZ_LDFLAGS ?=
PLUGIN  := $(BUILD)/hdf5-plugin/libh5zstd.so

# libshardpipe-reader: the C reader library (include/shardpipe/reader.h) as a
# shared library with a pkg-config file; every other symbol stays hidden.
PIC_OBJ   := $(LIB_SRC:%.c=$(BUILD)/pic/%.o) $(BUILD)/pic/gen/manifests.o
READER_SO := $(BUILD)/lib/libshardpipe-reader.so
READER_PC := $(BUILD)/lib/pkgconfig/shardpipe-reader.pc

.PHONY: all deps test check demo asan bench fuzz clean
.SECONDARY:
all: $(BINS) $(PLUGIN) $(UNITS) $(FUZZS) $(READER_SO) $(READER_PC)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -MMD -MP -c $< -o $@
$(BUILD)/pic/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -c $< -o $@
$(BUILD)/pic/common/sp_xxh_avx2.o: CFLAGS += -mavx2
$(BUILD)/pic/formats/resample.o: CFLAGS += -O3

$(READER_SO): $(PIC_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libshardpipe-reader.so $^ $(LDLIBS) -o $@

$(READER_PC): Makefile
	@mkdir -p $(dir $@)
	printf '%s\n' "libdir=$(abspath $(BUILD)/lib)" "includedir=$(abspath include)" "" \
	    "Name: shardpipe-reader" "Description: read shardpipe HDF5+zstd shard sets" "Version: 0.1.0" \
	    'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -lshardpipe-reader -Wl,-rpath,$${libdir}' > $@

# XXH3's AVX2 variant; sp_xxh.c calls it only on CPUs that have AVX2
$(BUILD)/obj/common/sp_xxh_avx2.o: CFLAGS += -mavx2
# the resampler's inner loops are written for the vectoriser, which -O2 leaves out
$(BUILD)/obj/formats/resample.o: CFLAGS += -O3
# so are the trainer's elementwise loops; sqrtf must not set errno to vectorise
$(BUILD)/obj/nn/%.o: CFLAGS += -O3 -fno-math-errno -fopenmp

# manifests/*.json compiled in, so the tools need no data files at run time
MANIFESTS := $(sort $(wildcard manifests/*.json)) manifests/imagenet/classes.txt
$(BUILD)/gen/embed: scripts/embed.c
	@mkdir -p $(dir $@)
	$(CC) -O1 $< -o $@
$(BUILD)/gen/manifests.c: $(BUILD)/gen/embed $(MANIFESTS)
	$(BUILD)/gen/embed sp_embedded_manifests $(MANIFESTS) > $@.tmp && mv $@.tmp $@
$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/%: $(BUILD)/obj/cmd/%.o $(CLI_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(BUILD)/obj/tests/fuzz/fuzz_fd.o $(FUZZ_DRIVER) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(FUZZ_LDFLAGS) $^ $(LDLIBS) -o $@

# The zstd filter as an HDF5 plugin, for h5py, h5dump and other readers. Built
# without sanitizers even in `make asan`: it is loaded into programs (python3,
# h5dump) that are not; the tools' own copy of the filter is sanitized.
$(PLUGIN): formats/h5zstd.c formats/h5zstd_plugin.c formats/h5zstd.h
	@mkdir -p $(dir $@)
	$(CC) $(filter-out $(SAN),$(CFLAGS)) -fPIC -shared formats/h5zstd.c formats/h5zstd_plugin.c \
	    $(shell pkg-config --libs hdf5 libzstd) -o $@

deps:
	@scripts/install-deps.sh

# `check` runs the suite on what is built; `test` installs and builds first.
check: all
	SP_BUILD=$(BUILD) SP_SAN="$(SAN)" tests/run.sh

test: deps
	@$(MAKE) --no-print-directory check

asan: deps
	@$(MAKE) --no-print-directory BUILD=build/asan OPT="-O1 -g" \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" check

# Coverage-guided fuzzing with clang's libFuzzer, FUZZ_SECONDS per target,
# starting from the seeds the replay test writes (tests/fuzz/make_seeds.sh).
FUZZ_SECONDS ?= 60
fuzz:
	@$(MAKE) --no-print-directory BUILD=build/fuzz CC=clang OPT="-O1 -g" \
	    SAN="-fsanitize=address,undefined,fuzzer-no-link" FUZZ_DRIVER= FUZZ_LDFLAGS=-fsanitize=fuzzer \
	    $(FUZZ:%=build/fuzz/tests/%)
	@tests/fuzz/make_seeds.sh build build/fuzz/seeds
	@for t in $(FUZZ); do \
	    mkdir -p build/fuzz/corpus/$$t && \
	    build/fuzz/tests/$$t -max_total_time=$(FUZZ_SECONDS) build/fuzz/corpus/$$t build/fuzz/seeds/$${t#fuzz_} \
	    || exit 1; done

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh $(BUILD)

# The benchmarks' peers and data: bare libjpeg-turbo, real photographs, PIL.
# libopenblas0-pthread: the system BLAS PyTorch calls (libblas.so.3) at its fastest
BENCH_PACKAGES := libturbojpeg0-dev mate-backgrounds python3-pil libopenblas0-pthread
$(BUILD)/bench/tj_decode: bench/tj_decode.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(shell pkg-config --cflags --libs libturbojpeg) -o $@

$(BUILD)/bench/reader_bench: bench/reader_bench.c $(READER_SO) $(READER_PC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -L$(BUILD)/lib -lshardpipe-reader -Wl,-rpath,$(abspath $(BUILD)/lib) -o $@

$(BUILD)/bench/fma_peak: bench/fma_peak.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@

$(BUILD)/bench/conv_algos: bench/conv_algos.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $< $(LIB) $(LDLIBS) -o $@

bench:
	@scripts/install-deps.sh $(BENCH_PACKAGES)
	@$(MAKE) --no-print-directory all $(BUILD)/bench/tj_decode $(BUILD)/bench/reader_bench $(BUILD)/bench/fma_peak \
	    $(BUILD)/bench/conv_algos
	@bench/run.sh $(BUILD)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj $(BUILD)/pic -name '*.d' 2>/dev/null)
