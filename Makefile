# shardpipe — see README.md.  `make` builds, `make test` installs what is
# missing, builds and runs every test, `make demo` converts Fashion-MNIST,
# `make install` / `make uninstall` (PREFIX, DESTDIR) put it on the system.

BUILD   ?= build
CC      ?= cc
PKGS    := hdf5 libarchive libzstd jansson libxxhash libcrypto libcurl libpng libjpeg zlib
# what libshardpipe-reader links: the reader, the JPEG/PNG decoders of
# encoded sets' views, and the downloads of sets at a URL; no archives
READER_PKGS := hdf5 libzstd jansson libxxhash libjpeg libpng libcurl libcrypto
# OpenBLAS built on OpenMP: the trainer shares batches out over OpenMP threads
# and calls the gemms inside them, where this variant runs them single-threaded
# in the same thread pool. (The pthread variant keeps idle workers of its own
# spinning on the cores those threads need; the serial one is not safe to call
# from several threads at once.) Not on the default library path.
BLAS_DIR := /usr/lib/$(shell $(CC) -print-multiarch 2>/dev/null)/openblas-openmp
BLAS    := $(shell PKG_CONFIG_PATH=$(BLAS_DIR)/pkgconfig pkg-config --cflags --libs openblas 2>/dev/null) \
           -Wl,-rpath,$(BLAS_DIR)
# Warnings are errors in CI and in `make check`/`test`/`asan`/`fuzz` (and with
# WERROR=-Werror), not in a plain `make`: a new compiler's new warning must not
# stop a user's build.
ifneq ($(filter check test asan fuzz,$(MAKECMDGOALS)),)
WERROR  ?= -Werror
endif
WERROR  ?=
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla $(WERROR)
OPT     ?= -O2 -g
SAN     ?=
# x86 vector code (the resampler's SSE4.1/AVX2 paths, chosen at run time) only
# when the compiler targets x86-64; SIMD=none builds the portable scalar paths
# alone, as on any other CPU, to test them on this one.
MACHINE := $(shell $(CC) -dumpmachine 2>/dev/null)
SIMD    ?= $(if $(filter x86_64-%,$(MACHINE)),x86,none)
SIMD_CFLAGS := $(if $(filter none,$(SIMD)),-DSP_NO_X86_SIMD)
CFLAGS  := -std=c11 $(OPT) $(WARN) $(SAN) $(SIMD_CFLAGS) -I. -Iinclude \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(filter -I%,$(BLAS))
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -ldnnl $(filter-out -I%,$(BLAS)) -lm -lpthread
LDFLAGS := $(SAN) -fopenmp -Wl,--as-needed

LIB_SRC := common/sp_common.c common/sp_atomic.c common/sp_part.c common/sp_hash.c common/sp_draw.c \
           formats/recstream.c formats/idx.c formats/cifar.c formats/pickle.c formats/cifar_py.c formats/cifar_mat.c formats/npy.c formats/image.c formats/jpeg_encode.c formats/matv5.c formats/resample.c \
           formats/h5zstd.c \
           pipeline/stage.c pipeline/datasets.c pipeline/unpack.c pipeline/decode.c pipeline/fetch.c pipeline/labels.c \
           pipeline/resize.c pipeline/normalize.c pipeline/parallel.c pipeline/views.c pipeline/wds.c \
           shards/h5util.c shards/manifest.c shards/shard_writer.c shards/journal.c shards/shard_h5write.c \
           shards/shard_h5file.c shards/naming.c shards/merge.c shards/shard_reader.c shards/verify.c \
           shards/shuffle.c shards/inspect.c shards/reader.c shards/order.c shards/shard_records.c shards/remote.c shards/mix.c \
           shards/cache.c shards/upload.c
# the neural-network library of the trainer: in the static library, not in libshardpipe-reader
NN_SRC  := nn/rng.c nn/layers.c nn/relu.c nn/dense.c nn/conv.c nn/onednn.c nn/pool.c nn/norm.c nn/norm_blocked.c nn/loss.c nn/models.c nn/optim.c nn/checkpoint.c nn/data.c nn/class_names.c nn/metrics.c nn/train.c nn/dist.c nn/syncbn.c
CLI_SRC := common/sp_cli.c
TOOLS   := sp-fetch sp-unpack sp-decode sp-resize sp-normalize sp-shard sp-cat sp-verify sp-inspect sp-train sp-eval
UNIT    := test_recstream test_idx test_h5zstd test_resample test_views test_shard_split test_draw test_wds test_order test_mix
# programs a tool test runs: checks that need fixtures made first (tests/tools/test_nn.sh),
# the views dumped for the torchvision comparison (tests/tools/test_views.sh), the
# cache's egress over epochs (tests/tools/test_cache_eviction.sh, bench/bench_egress.py),
# the trainer's augmentation dumped for torchvision (tests/tools/test_pad_crop_flip.sh)
UNIT_FIX := nn_reference view_dump cache_egress aug_dump
FUZZ    := fuzz_recstream fuzz_idx fuzz_unpack fuzz_image fuzz_views fuzz_mat fuzz_checkpoint fuzz_manifest fuzz_cifar fuzz_labels fuzz_pickle fuzz_wds

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
# versioned shared library, built from what reading needs and nothing else
# (linked with --no-undefined: a missing piece fails the link; libcurl and
# libcrypto fetch and hash the shards of a set at a URL, shards/remote.c; no
# libarchive); every symbol but the
# spr_ API stays hidden. The build tree's pkg-config file is the -uninstalled
# variant, which pkg-config prefers when both are on PKG_CONFIG_PATH: it
# points into the build tree (rpath included); `make install` writes the
# real one, relative to its prefix, with no rpath.
READER_SRC := shards/reader.c shards/mix.c shards/order.c shards/shard_reader.c shards/h5util.c shards/manifest.c shards/remote.c \
              shards/cache.c \
              formats/h5zstd.c formats/recstream.c common/sp_common.c common/sp_atomic.c \
              pipeline/views.c pipeline/resize.c formats/image.c formats/resample.c
READER_VERSION := 0.1.0
READER_SONAME  := libshardpipe-reader.so.0
READER_REAL    := $(BUILD)/lib/libshardpipe-reader.so.$(READER_VERSION)
READER_SO      := $(BUILD)/lib/libshardpipe-reader.so
READER_PC      := $(BUILD)/lib/pkgconfig/shardpipe-reader-uninstalled.pc
READER_PC_BODY := "Name: shardpipe-reader" "Description: read shardpipe HDF5+zstd shard sets" \
                  "Version: $(READER_VERSION)" "Requires.private: $(READER_PKGS)" "Cflags: -I\$${includedir}"

# `make install`: where things go. DESTDIR is prepended to every one of them
# (a staged install); PREFIX alone decides the paths written into the files.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
MANDIR     ?= $(PREFIX)/share/man
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
# /usr/bin/python3 searches $(PREFIX)/lib/python3.X/dist-packages for
# PREFIX=/usr/local, /usr/lib/python3/dist-packages for PREFIX=/usr
PYTHON     ?= /usr/bin/python3
PYTHONDIR  ?= $(if $(filter /usr,$(PREFIX)),$(PREFIX)/lib/python3/dist-packages,$(PREFIX)/lib/$(shell \
              $(PYTHON) -c 'import sys; print("python%d.%d" % sys.version_info[:2])' 2>/dev/null)/dist-packages)
# HDF5 searches Debian's plugin directory (inside libhdf5's own libdir) by
# default: there for PREFIX=/usr; for any other PREFIX, $(LIBDIR)/hdf5/plugin,
# which h5py finds through HDF5_PLUGIN_PATH (the installed Python package
# adds it by itself).
HDF5_LIBDIR := $(patsubst -L%,%,$(firstword $(shell pkg-config --libs-only-L hdf5 2>/dev/null)))
HDF5_PLUGIN_DIR ?= $(if $(and $(filter /usr,$(PREFIX)),$(HDF5_LIBDIR)),$(HDF5_LIBDIR)/plugins,$(LIBDIR)/hdf5/plugin)
# installed under a name of its own, beside any other package's libh5zstd.so
PLUGIN_NAME := libshardpipe-h5zstd.so
# the files the README names from the checkout: the ImageNet class list
# (imagenet/classes.txt), scripts/torch2ckpt.py and scripts/slurm/
DATADIR    ?= $(PREFIX)/share/shardpipe
SLURM_SCRIPTS := $(sort $(wildcard scripts/slurm/*))
INSTALL_DIRS = $(BINDIR) $(MANDIR)/man1 $(COMPLETIONDIR) $(LIBDIR) $(INCLUDEDIR)/shardpipe $(PKGCONFIGDIR) \
               $(HDF5_PLUGIN_DIR) $(PYTHONDIR)/shardpipe $(DATADIR)/imagenet $(DATADIR)/slurm

MANS       := $(TOOLS:%=$(BUILD)/man/%.1)
COMPLETION := $(BUILD)/completion/shardpipe

.PHONY: all deps test check demo reproduce asan tsan-reader bench bench-loader bench-overlap bench-egress bench-stall bench-gpu bench-scale fuzz clean install install-files uninstall pkg-config-check
.SECONDARY:
all: $(BINS) $(PLUGIN) $(UNITS) $(FUZZS) $(READER_SO) $(READER_PC)

# Every compile needs the packages: a missing one stops the build here, with
# pkg-config's own message naming it, not later at a missing header.
pkg-config-check:
	@pkg-config --print-errors --exists $(PKGS)
	@PKG_CONFIG_PATH=$(BLAS_DIR)/pkgconfig pkg-config --print-errors --exists openblas
	@test -f /usr/include/oneapi/dnnl/dnnl.h || { echo "oneDNN's headers are missing: install libdnnl-dev (scripts/install-deps.sh --build)" >&2; exit 1; }

$(BUILD)/obj/%.o: %.c | pkg-config-check
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/pic/%.o: %.c | pkg-config-check
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -MMD -MP -c $< -o $@
$(BUILD)/pic/formats/resample.o: CFLAGS += -O3

$(READER_REAL): $(READER_SRC:%.c=$(BUILD)/pic/%.o)
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -shared -Wl,-soname,$(READER_SONAME) -Wl,--no-undefined -Wl,--as-needed $^ \
	    $(shell pkg-config --libs $(READER_PKGS) 2>/dev/null) -lm -lpthread -o $@
$(BUILD)/lib/$(READER_SONAME): $(READER_REAL)
	ln -sf $(notdir $<) $@
$(READER_SO): $(BUILD)/lib/$(READER_SONAME)
	ln -sf $(notdir $<) $@

$(READER_PC): Makefile
	@mkdir -p $(dir $@)
	printf '%s\n' "libdir=$(abspath $(BUILD)/lib)" "includedir=$(abspath include)" "" $(READER_PC_BODY) \
	    'Libs: -L$${libdir} -lshardpipe-reader -Wl,-rpath,$${libdir}' > $@

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
$(PLUGIN): formats/h5zstd.c formats/h5zstd_plugin.c formats/h5zstd.h | pkg-config-check
	@mkdir -p $(dir $@)
	$(CC) $(filter-out $(SAN),$(CFLAGS)) -fPIC -shared formats/h5zstd.c formats/h5zstd_plugin.c \
	    $(shell pkg-config --libs hdf5 libzstd) -o $@

deps:
	@scripts/install-deps.sh

# `check` runs the suite on what is built; `test` installs and builds first,
# JOBS compilers at a time (default: the cores).
JOBS ?= $(shell nproc)
check: all
	SP_BUILD=$(BUILD) SP_SAN="$(SAN)" tests/run.sh

test: deps
	@$(MAKE) --no-print-directory -j$(JOBS) check

asan: deps
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=build/asan OPT="-O1 -g" \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" check

# libshardpipe-reader alone under ThreadSanitizer (build/tsan/lib), driven by
# test_reader_hostile's program (its threads, a set closed under them,
# fork() while they read); the tools that make its fixture are the plain build's.
tsan-reader: all
	@$(MAKE) --no-print-directory BUILD=build/tsan OPT="-O1 -g" SAN="-fsanitize=thread" WERROR=-Werror \
	    build/tsan/lib/libshardpipe-reader.so build/tsan/lib/pkgconfig/shardpipe-reader-uninstalled.pc
	SP_BUILD=$(BUILD) SP_SAN="-fsanitize=thread" SP_READER_BUILD=$(abspath build/tsan) SP_TESTS=test_reader_hostile \
	    TSAN_OPTIONS="halt_on_error=1 die_after_fork=0 $(TSAN_OPTIONS)" tests/run.sh

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

demo:
	@scripts/install-deps.sh --demo
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh $(BUILD)

# The benchmarks' peers and data: bare libjpeg-turbo, real photographs, PIL.
# libopenblas0-pthread: the system BLAS PyTorch calls (libblas.so.3) at its fastest
BENCH_PACKAGES := libturbojpeg0-dev mate-backgrounds python3-pil libopenblas0-pthread python3-torchvision
$(BUILD)/bench/tj_decode: bench/tj_decode.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(shell pkg-config --cflags --libs libturbojpeg) -o $@

$(BUILD)/bench/reader_bench: bench/reader_bench.c $(READER_SO) $(READER_PC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -L$(BUILD)/lib -lshardpipe-reader -Wl,-rpath,$(abspath $(BUILD)/lib) -o $@

$(BUILD)/bench/view_bench: bench/view_bench.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $< $(LIB) $(LDLIBS) -o $@

$(BUILD)/bench/fma_peak: bench/fma_peak.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -pthread -o $@

$(BUILD)/bench/conv_algos: bench/conv_algos.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $< $(LIB) $(LDLIBS) -o $@

# The recipes against their published and PyTorch figures (bench/reproduce.py):
# hours on 2 cores, never in make test. DATA holds the cifar10 and mnist shard sets.
DATA ?= data
reproduce: all
	BUILD=$(BUILD) bench/reproduce.sh $(DATA) $(BUILD)/reproduce

bench:
	@scripts/install-deps.sh $(BENCH_PACKAGES)
	@$(MAKE) --no-print-directory all $(BUILD)/bench/tj_decode $(BUILD)/bench/reader_bench $(BUILD)/bench/fma_peak \
	    $(BUILD)/bench/conv_algos $(BUILD)/bench/view_bench
	@bench/run.sh $(BUILD)

# Python loaders side by side (bench/bench_loader.py): shardpipe.Loader, the
# C reader alone, the IterableDataset through DataLoader, a PIL JPEG pipeline, h5py.
bench-loader:
	@scripts/install-deps.sh $(BENCH_PACKAGES)
	@$(MAKE) --no-print-directory all $(BUILD)/bench/reader_bench
	/usr/bin/python3 bench/bench_loader.py $(BUILD) $(BENCH_PHOTOS)

# resnet20's step time at 2 MPI ranks with the gradients' allreduce overlapped
# with the backward pass and after it, side by side (bench/bench_mpi.py --overlap;
# docs/training.md). Needs Open MPI (mpirun).
bench-overlap:
	@$(MAKE) --no-print-directory all
	/usr/bin/python3 bench/bench_mpi.py $(BUILD) --overlap

# The scale harness (bench/scale.py; docs/scale.md): every stage of the IDX and
# ILSVRC paths at SCALE_SIZES records (default 10000,100000), time per record
# and peak RSS. Long: not part of make bench.
bench-scale:
	@scripts/install-deps.sh $(BENCH_PACKAGES)
	@$(MAKE) --no-print-directory all $(BUILD)/bench/reader_bench
	/usr/bin/python3 bench/scale.py $(BUILD)

# A GPU fed by shardpipe.Loader (bench/bench_gpu_feed.py): torchvision's
# ResNet-50 from 224x224 shards against synthetic batches on the device.
# Needs a CUDA build of torch and a GPU (Debian's python3-torch is CPU only).
# the cache of sets at a URL: bytes downloaded over 3 epochs at a 25% limit,
# the reader's eviction against LRU, and the simulator's 10/25/50% (not in make test)
bench-egress:
	@$(MAKE) --no-print-directory all
	/usr/bin/python3 bench/bench_egress.py $(BUILD)

# a remote set read at a fixed rate from a server throttled to 1.2x it: the consumer's waits (not in make test)
bench-stall:
	@$(MAKE) --no-print-directory all
	/usr/bin/python3 bench/bench_stall.py $(BUILD)

bench-gpu:
	@scripts/install-deps.sh $(BENCH_PACKAGES)
	@$(MAKE) --no-print-directory all
	/usr/bin/python3 bench/bench_gpu_feed.py $(BUILD)

# Man pages from each tool's --help and --version; the NAME line is the
# --help text's first sentence after the usage lines, to its first '.' or ':'
# that ends a word (one followed by a space or the end: "manifest.json" stays whole).
$(BUILD)/man/%.1: $(BUILD)/bin/%
	@mkdir -p $(dir $@)
	help2man -N -n "$$($< --help | sed -n '2,$$p' | sed '/^ *or: /d' | tr '\n' ' ' | sed 's/[.:]\( \|$$\).*//; s/ *$$//')" -o $@.tmp $< && mv $@.tmp $@

# bash completion for every tool, from their --help (scripts/completion.sh)
$(COMPLETION): scripts/completion.sh $(BINS)
	@mkdir -p $(dir $@)
	scripts/completion.sh -d "$(basename $(notdir $(wildcard manifests/*.json)))" $(BINS) > $@.tmp && mv $@.tmp $@

# Installs the tools, their man pages and bash completion, libshardpipe-reader
# (.so.0 with its header and pkg-config file), the HDF5 filter plugin and the
# Python package (python/shardpipe/, with _install.py naming the plugin and
# library directories relative to it, so a staged or moved copy still finds
# them). Nothing written refers to the build tree.
PY_PACKAGE := $(wildcard python/shardpipe/*.py)
# what install copies, built alone (debian/rules builds this, not the tests)
install-files: $(BINS) $(MANS) $(COMPLETION) $(READER_SO) $(PLUGIN)
install: install-files
	@# the directories install makes (each missing one, parents included),
	@# added to $(DATADIR)/installed-dirs for uninstall to remove when empty
	made=$$(for d in $(INSTALL_DIRS:%=$(DESTDIR)%); do \
	    while [ ! -d "$$d" ]; do echo "$$d"; d=$$(dirname "$$d"); done; done); \
	install -d $(INSTALL_DIRS:%=$(DESTDIR)%) && \
	{ cat $(DESTDIR)$(DATADIR)/installed-dirs 2>/dev/null; printf '%s\n' $$made; } | sort -u | grep . \
	    > $(DESTDIR)$(DATADIR)/installed-dirs.tmp; mv $(DESTDIR)$(DATADIR)/installed-dirs.tmp $(DESTDIR)$(DATADIR)/installed-dirs
	install -m 755 $(BINS) $(DESTDIR)$(BINDIR)/
	install -m 644 $(MANS) $(DESTDIR)$(MANDIR)/man1/
	install -m 644 $(COMPLETION) $(DESTDIR)$(COMPLETIONDIR)/shardpipe
	for t in $(TOOLS); do ln -sf shardpipe $(DESTDIR)$(COMPLETIONDIR)/$$t || exit 1; done
	install -m 755 $(READER_REAL) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(READER_REAL)) $(DESTDIR)$(LIBDIR)/$(READER_SONAME)
	ln -sf $(READER_SONAME) $(DESTDIR)$(LIBDIR)/libshardpipe-reader.so
	install -m 644 include/shardpipe/reader.h $(DESTDIR)$(INCLUDEDIR)/shardpipe/
	printf '%s\n' "prefix=$(PREFIX)" "libdir=$(patsubst $(PREFIX)/%,\$${prefix}/%,$(LIBDIR))" \
	    "includedir=$(patsubst $(PREFIX)/%,\$${prefix}/%,$(INCLUDEDIR))" "" $(READER_PC_BODY) \
	    'Libs: -L$${libdir} -lshardpipe-reader' > $(DESTDIR)$(PKGCONFIGDIR)/shardpipe-reader.pc
	install -m 755 $(PLUGIN) $(DESTDIR)$(HDF5_PLUGIN_DIR)/$(PLUGIN_NAME)
	install -m 644 $(PY_PACKAGE) $(DESTDIR)$(PYTHONDIR)/shardpipe/
	printf '%s\n' '"""Written by make install: where the HDF5 plugin and libshardpipe-reader were installed."""' \
	    "PLUGIN_DIR = \"$$(realpath -m --relative-to=$(PYTHONDIR)/shardpipe $(HDF5_PLUGIN_DIR))\"" \
	    "LIB_DIR = \"$$(realpath -m --relative-to=$(PYTHONDIR)/shardpipe $(LIBDIR))\"" \
	    > $(DESTDIR)$(PYTHONDIR)/shardpipe/_install.py
	install -m 644 manifests/imagenet/classes.txt $(DESTDIR)$(DATADIR)/imagenet/
	install -m 755 scripts/torch2ckpt.py $(DESTDIR)$(DATADIR)/
	install -m 755 $(SLURM_SCRIPTS) $(DESTDIR)$(DATADIR)/slurm/
	if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then ldconfig || true; fi

# Removes exactly what install wrote (and the Python package's bytecode), then
# the directories install made, deepest first, those left empty.
uninstall:
	rm -f $(TOOLS:%=$(DESTDIR)$(BINDIR)/%) $(TOOLS:%=$(DESTDIR)$(MANDIR)/man1/%.1) \
	    $(DESTDIR)$(COMPLETIONDIR)/shardpipe $(TOOLS:%=$(DESTDIR)$(COMPLETIONDIR)/%) \
	    $(DESTDIR)$(LIBDIR)/libshardpipe-reader.so.$(READER_VERSION) $(DESTDIR)$(LIBDIR)/$(READER_SONAME) \
	    $(DESTDIR)$(LIBDIR)/libshardpipe-reader.so $(DESTDIR)$(INCLUDEDIR)/shardpipe/reader.h \
	    $(DESTDIR)$(PKGCONFIGDIR)/shardpipe-reader.pc $(DESTDIR)$(HDF5_PLUGIN_DIR)/$(PLUGIN_NAME) \
	    $(DESTDIR)$(DATADIR)/imagenet/classes.txt $(DESTDIR)$(DATADIR)/torch2ckpt.py \
	    $(SLURM_SCRIPTS:scripts/slurm/%=$(DESTDIR)$(DATADIR)/slurm/%)
	rm -rf $(DESTDIR)$(PYTHONDIR)/shardpipe
	made=$$(cat $(DESTDIR)$(DATADIR)/installed-dirs 2>/dev/null); rm -f $(DESTDIR)$(DATADIR)/installed-dirs; \
	for d in $$(printf '%s\n' $$made | sort -r); do rmdir "$$d" 2>/dev/null || true; done
	if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then ldconfig || true; fi

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj $(BUILD)/pic -name '*.d' 2>/dev/null)
