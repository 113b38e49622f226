"""ctypes binding of libshardpipe-reader (include/shardpipe/reader.h): where the library is found, and its calls."""
import ctypes
import functools
import os
import subprocess

__all__ = ["lib", "library_path", "ReaderError", "ReaderArgumentError", "IterOptions", "SPR_ERR_CORRUPT",
           "SPR_ERR_USAGE", "SPR_NEXT_SEED", "pkg_config_libdir"]

SONAME = "libshardpipe-reader.so.0"


class ReaderError(RuntimeError):
    """libshardpipe-reader cannot be loaded, or a call of it failed (the message is the reader's)."""


class ReaderArgumentError(ReaderError, ValueError):
    """The reader refused an argument (a size out of its range, a view the set cannot give, an
    iterator used after a fork): a ValueError too."""


@functools.lru_cache(maxsize=None)
def pkg_config_libdir():
    """The libdir of the shardpipe-reader.pc pkg-config finds (its prefix taken
    from where the .pc lies: --define-prefix), or None: how a package installed
    by pip, which has no _install.py, finds a `make install`."""
    try:
        r = subprocess.run(["pkg-config", "--define-prefix", "--variable=libdir", "shardpipe-reader"],
                           capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() or None if r.returncode == 0 else None


def _candidates():
    """$SHARDPIPE_READER_LIB; this checkout's build/lib (the package is
    python/shardpipe); the directory _install.py (written by make install)
    names, relative to the package; the libdir of pkg-config's
    shardpipe-reader; then the dynamic linker's search."""
    here = os.path.dirname(os.path.abspath(__file__))
    if os.environ.get("SHARDPIPE_READER_LIB"):
        yield os.environ["SHARDPIPE_READER_LIB"]
    yield os.path.join(os.path.dirname(os.path.dirname(here)), "build", "lib", SONAME)
    try:
        from ._install import LIB_DIR
        yield os.path.normpath(os.path.join(here, LIB_DIR, SONAME))
    except ImportError:
        pass
    if pkg_config_libdir():
        yield os.path.join(pkg_config_libdir(), SONAME)
    yield SONAME


class IterOptions(ctypes.Structure):
    """spr_iter_options (include/shardpipe/reader.h), field for field."""
    _fields_ = [("batch", ctypes.c_uint32), ("seed", ctypes.c_uint64), ("flags", ctypes.c_int),
                ("window_records", ctypes.c_uint32), ("part", ctypes.c_uint32), ("nparts", ctypes.c_uint32),
                ("skip_records", ctypes.c_uint64), ("threads", ctypes.c_uint32), ("view", ctypes.c_int),
                ("size", ctypes.c_uint32), ("scale_min", ctypes.c_double), ("scale_max", ctypes.c_double),
                ("ratio_min", ctypes.c_double), ("ratio_max", ctypes.c_double), ("max_pixels", ctypes.c_uint64),
                ("partitions", ctypes.c_uint32), ("next_seed", ctypes.c_uint64)]


SPR_NEXT_SEED = 4  # spr_iter_options.flags: next_seed holds the next epoch's seed

# spr_errcode's values (include/shardpipe/reader.h)
SPR_ERR_DATA, SPR_ERR_USAGE, SPR_ERR_SYSTEM, SPR_ERR_CORRUPT = 1, 2, 3, 4


def _declare(l):
    c = ctypes
    P, u32, u64, i32p = c.c_void_p, c.c_uint32, c.c_uint64, c.POINTER(c.c_int32)
    for name, res, args in [
        ("spr_open", P, [c.c_char_p, c.c_char_p, c.c_char_p, c.c_size_t]),
        ("spr_open_cached", P, [c.c_char_p, c.c_char_p, c.c_char_p, u64, c.c_char_p, c.c_size_t,
                                c.POINTER(c.c_int)]),
        ("spr_close", None, [P]),
        ("spr_error", c.c_char_p, [P]),
        ("spr_errcode", c.c_int, [P]),
        ("spr_count", u64, [P]),
        ("spr_shape", None, [P, c.POINTER(u32), c.POINTER(u32), c.POINTER(u32)]),
        ("spr_dtype", c.c_int, [P]),
        ("spr_record_bytes", c.c_size_t, [P]),
        ("spr_num_classes", c.c_int, [P]),
        ("spr_class_name", c.c_char_p, [P, c.c_int]),
        ("spr_normalization", c.c_int, [P, c.POINTER(c.c_double), c.POINTER(c.c_double), c.POINTER(c.c_int)]),
        ("spr_read", c.c_int, [P, u64, c.c_void_p, i32p]),
        ("spr_normalize", c.c_int, [P, c.c_void_p, u64, c.c_void_p]),
        ("spr_normalize_hw", c.c_int, [P, c.c_void_p, u64, u32, u32, c.c_void_p]),
        ("spr_kind", c.c_int, [P]),
        ("spr_iter_new_part", P, [P, u32, u64, c.c_int, u32, u32, u32, u64]),
        ("spr_iter_open", P, [P, c.POINTER(IterOptions), c.c_size_t]),
        ("spr_iter_records", u64, [P]),
        ("spr_iter_steps", u64, [P]),
        ("spr_iter_partitions", u32, [P]),
        ("spr_iter_bytes_read", u64, [P]),
        ("spr_iter_next_full", c.c_int, [P, c.c_void_p, c.c_void_p, c.c_void_p, c.c_void_p, c.POINTER(u32)]),
        ("spr_iter_free", None, [P]),
        ("spr_mix_default_partitions", u32, [u64]),
        ("spr_mix_open", P, [P, c.POINTER(c.c_double), c.POINTER(c.c_int), u32, c.POINTER(IterOptions), c.c_size_t,
                             u64, u64, c.c_char_p, c.c_size_t, c.POINTER(c.c_int)]),
        ("spr_mix_next", c.c_int, [P, c.c_void_p, c.c_void_p, c.c_void_p, c.c_void_p, c.c_void_p, c.POINTER(u32)]),
        ("spr_mix_steps", u64, [P]),
        ("spr_mix_partitions", u32, [P]),
        ("spr_mix_bytes_read", u64, [P]),
        ("spr_mix_error", c.c_char_p, [P]),
        ("spr_mix_errcode", c.c_int, [P]),
        ("spr_mix_free", None, [P]),
    ]:
        f = getattr(l, name)
        f.restype, f.argtypes = res, args
    return l


_lib = None
library_path = None


def lib():
    """The loaded library (once per process); ReaderError naming every place tried when none loads."""
    global _lib, library_path
    if _lib is None:
        tried = []
        for path in _candidates():
            if os.sep in path and not os.path.exists(path):
                tried.append(f"{path}: no such file")
                continue
            try:
                loaded = ctypes.CDLL(path)
                getattr(loaded, "spr_mix_open")  # the newest call this binding uses
            except (OSError, AttributeError) as e:
                tried.append(f"{path}: {e}")
                continue
            _lib, library_path = _declare(loaded), path
            break
        else:
            raise ReaderError("cannot load libshardpipe-reader (build it with make, or make install; or set "
                              "SHARDPIPE_READER_LIB to its path): " + "; ".join(tried))
    return _lib
