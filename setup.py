"""Build of goalloc's C extension (goalloc._core) from csrc/.

GOALLOC_WERROR=1 turns on the development warning set with -Werror;
GOALLOC_SANITIZE=1 builds with AddressSanitizer and UBSan (run the tests
with the sanitizer runtime preloaded, see README).
"""
import glob
import os

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
    ],
)
