"""The string options of goalloc.Heap as Literal types.

Each lists exactly what the binding accepts (csrc/python/options.c;
goos and goarch: the ports of csrc/platform.c, Go 1.13's first-class and
secondary ports); tests/test_heap_signature.py checks them against the
C sources.  Type checkers then catch Heap(backing="vritual") before the
binding's ValueError would.
"""
from __future__ import annotations

from typing import Literal

Backing = Literal["os", "virtual"]
# "go1.13" is Go's tag for go1.13.0 (and go1.13.1, go1.13.2 allocate
# alike); go1.13.8 stands for go1.13.3 and every later 1.13 release
Release = Literal["go1.13.8", "go1.13.0", "go1.13"]
Collector = Literal["free", "gc"]
Goos = Literal["aix", "android", "darwin", "dragonfly", "freebsd",
               "illumos", "linux", "netbsd", "openbsd", "plan9", "solaris",
               "windows"]
Goarch = Literal["386", "amd64", "arm", "arm64", "mips", "mips64",
                 "mips64le", "mipsle", "ppc64", "ppc64le", "s390x"]
