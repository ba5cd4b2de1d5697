"""Build of goalloc's C extension (goalloc._core) from csrc/.

GOALLOC_WERROR=1 turns on the development warning set with -Werror;
GOALLOC_SANITIZE=1 builds with AddressSanitizer and UBSan (run the tests
with the sanitizer runtime preloaded, see README).
"""
import glob
import os
import platform
import re

from setuptools import Extension, setup

CFLAGS = ["-std=c11", "-fvisibility=hidden", "-O2", "-g"]
if os.environ.get("GOALLOC_WERROR") == "1":
    CFLAGS += [
        "-Wall", "-Wextra", "-Wshadow", "-Wstrict-prototypes",
        "-Wmissing-prototypes", "-Wimplicit-fallthrough",
        "-Wno-missing-field-initializers", "-Werror",
    ]
LDFLAGS = []
if os.environ.get("GOALLOC_SANITIZE") == "1":
    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
           "-fno-sanitize-recover=all"]
    CFLAGS = [f for f in CFLAGS if f != "-O2"] + ["-O1"] + san
    LDFLAGS += san


def version() -> str:
    with open("goalloc/__init__.py", encoding="utf-8") as f:
        m = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M)
    assert m is not None
    return m.group(1)


setup(
    ext_modules=[
        Extension(
            "goalloc._core",
            # the core (csrc/*.c, no Python) and the binding (csrc/python/)
            sources=sorted(glob.glob("csrc/*.c"))
            + sorted(glob.glob("csrc/python/*.c")),
            include_dirs=["csrc", "csrc/python"],
            depends=sorted(glob.glob("csrc/*.h"))
            + sorted(glob.glob("csrc/python/*.h")),
            extra_compile_args=CFLAGS,
            extra_link_args=LDFLAGS,
            libraries=["pthread"],
        ),
        # the LD_PRELOAD capture shim (goalloc/capture.py): a plain C shared
        # library that is never imported, built without the sanitizers
        Extension(
            "goalloc._gatrace",
            sources=["csrc/tracehook/gatrace.c"],
            extra_compile_args=[f for f in CFLAGS if "sanitize" not in f]
            + ["-fno-builtin"],
            libraries=["pthread", "dl"],  # dl: dlsym before glibc 2.34
        ),
        # the malloc replacement (goalloc run, csrc/preload/gomalloc.h): the
        # core and csrc/preload/ in a plain C shared library that is never
        # imported, built without the sanitizers.  Initial-exec TLS: no
        # __tls_get_addr (which may allocate) inside malloc; no builtin
        # malloc family, so that the compiler turns nothing into a call of
        # the function being defined.
        Extension(
            "goalloc._gomalloc",
            sources=sorted(glob.glob("csrc/*.c"))
            + sorted(glob.glob("csrc/preload/*.c")),
            include_dirs=["csrc", "csrc/preload"],
            depends=sorted(glob.glob("csrc/*.h"))
            + sorted(glob.glob("csrc/preload/*.h")),
            define_macros=[("GOALLOC_VERSION", f'"{version()}"')],
            extra_compile_args=[f for f in CFLAGS if "sanitize" not in f]
            + ["-ftls-model=initial-exec", "-fno-builtin-malloc",
               "-fno-builtin-calloc", "-fno-builtin-realloc",
               "-fno-builtin-free"]
            # the sweep counts bits: one instruction on every x86-64 CPU
            # since 2008, else a libgcc call per 64 slots
            + (["-mpopcnt"] if platform.machine() == "x86_64" else []),
            extra_link_args=["-Wl,-z,nodelete"],
            libraries=["pthread", "m"],
        ),
    ],
)
