"""Real programs on goalloc's malloc replacement, each compared with the
same program on glibc: CPython's own regression tests (PYTHONMALLOC=malloc,
Debian's python3 and libpython3.x-testsuite), sqlite3, git, gcc, sort,
redis-server driven by redis-benchmark, and a multithreaded program of
ours.  tools/test.sh installs the Debian packages; a missing program
fails the check.  The sanitizer run skips them: they run the plain
library, not the sanitized extension, and the plain run has run them."""
from __future__ import annotations

import hashlib
import os
import random
import socket
import subprocess
import time
from pathlib import Path

import pytest

from helpers import ASAN
from preload_helpers import (
    PRELOAD_SRC,
    ROOT,
    compile_c,
    goalloc_env,
    linux_x86_64,
    need,
    plain_env,
    run,
)

pytestmark = [linux_x86_64, pytest.mark.skipif(
    ASAN, reason="runs the plain library; the plain pytest run has run it")]

# CPython regression tests: containers, json, re, unicode, threading,
# subprocess, pickle and more; about 6000 tests, a minute per run.
PY_MODULES = [
    "test_list", "test_dict", "test_set", "test_deque", "test_tuple",
    "test_json", "test_re", "test_unicode", "test_threading",
    "test_subprocess", "test_pickle", "test_bytes", "test_string",
    "test_collections", "test_heapq", "test_bisect", "test_array",
    "test_struct", "test_itertools", "test_functools", "test_enum",
    "test_csv", "test_zlib", "test_base64", "test_sort",
    "test_ordered_dict", "test_textwrap", "test_difflib", "test_fstring",
    "test_math", "test_userdict", "test_userlist", "test_copy",
    "test_operator",
]


def both(cmd: list[str], **kw: object) -> bytes:
    """cmd's stdout on glibc, checked equal to its stdout on goalloc."""
    glibc = run(cmd, on_goalloc=False, **kw).stdout  # type: ignore[arg-type]
    ours = run(cmd, on_goalloc=True, **kw).stdout  # type: ignore[arg-type]
    assert ours == glibc, f"{cmd}: output differs on goalloc"
    return glibc


def test_cpython_regression_tests(tmp_path: Path) -> None:
    python = "/usr/bin/python3"   # Debian's, whose test package is installed
    assert os.path.exists(python)
    check = subprocess.run([python, "-c", "import test.test_list"],
                           capture_output=True)
    assert check.returncode == 0, (
        "CPython's test package is missing: apt-get install "
        "libpython3.x-testsuite (tools/test.sh does)")
    out = {}
    for where in ("glibc", "goalloc"):
        f = tmp_path / f"{where}.txt"
        env = (goalloc_env if where == "goalloc" else plain_env)(
            PYTHONMALLOC="malloc")
        run([python, str(PRELOAD_SRC / "unittest_outcomes.py"), str(f),
             *PY_MODULES], on_goalloc=where == "goalloc", env=env,
            cwd=tmp_path, timeout=900)
        out[where] = f.read_text()
    assert out["goalloc"] == out["glibc"]
    totals = out["glibc"].splitlines()[-1].split()
    assert totals[:2] == ["modules", str(len(PY_MODULES))]
    assert len(PY_MODULES) >= 20 and int(totals[3]) > 5000


SQL = """
CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT, price REAL, tag TEXT);
WITH RECURSIVE c(x) AS (VALUES(1) UNION ALL SELECT x + 1 FROM c
                        WHERE x < 120000)
INSERT INTO item SELECT x, printf('item-%08d-%s', x,
                                  substr('abcdefghijklmnop', x % 13, 7)),
       (x * 7919 % 100000) / 100.0, 'tag' || (x % 97) FROM c;
CREATE INDEX item_name ON item(name);
CREATE TABLE sale(item INTEGER, qty INTEGER);
INSERT INTO sale SELECT id, id % 11 FROM item WHERE id % 3 = 0;
SELECT count(*), sum(price), min(name), max(name) FROM item;
SELECT tag, count(*), round(avg(price), 3) FROM item GROUP BY tag
  ORDER BY tag LIMIT 12;
SELECT i.tag, sum(s.qty) FROM item i JOIN sale s ON s.item = i.id
  GROUP BY i.tag ORDER BY 2 DESC, 1 LIMIT 8;
SELECT name FROM item WHERE name LIKE 'item-0001%' ORDER BY price DESC
  LIMIT 5;
UPDATE item SET name = upper(name) WHERE id % 5 = 0;
DELETE FROM item WHERE id % 7 = 0;
SELECT count(*), count(DISTINCT tag), group_concat(id) FROM
  (SELECT id, tag FROM item ORDER BY name LIMIT 40);
VACUUM;
PRAGMA integrity_check;
"""


def test_sqlite3_120k_rows(tmp_path: Path) -> None:
    sqlite3 = need("sqlite3")
    outs = []
    for on_goalloc in (False, True):
        db = tmp_path / f"db{int(on_goalloc)}.sqlite"
        p = run([sqlite3, str(db)], on_goalloc=on_goalloc,
                input=SQL.encode())
        outs.append(p.stdout)
    assert outs[0] == outs[1]
    assert outs[0].startswith(b"120000|") and outs[0].endswith(b"ok\n")


def test_git_log_with_patches() -> None:
    git = need("git")
    out = both([git, "-C", str(ROOT), "log", "-p", "--stat", "-n", "300",
                "--no-color"])
    assert out.count(b"\ndiff --git ") > 50


def test_gcc_compiles_a_c_file(tmp_path: Path) -> None:
    gcc = need("gcc")
    src = ROOT / "tests" / "c" / "test_sysalloc.c"  # 80 KB of assembly
    outs = []
    for on_goalloc in (False, True):
        asm = tmp_path / f"heap{int(on_goalloc)}.s"
        run([gcc, "-O2", "-S", "-I", str(ROOT / "csrc"), "-I",
             str(ROOT / "tests" / "c"), str(src), "-o", str(asm)],
            on_goalloc=on_goalloc)
        outs.append(asm.read_bytes())
    assert outs[0] == outs[1] and len(outs[0]) > 50_000


def test_sort_a_large_file(tmp_path: Path) -> None:
    rng = random.Random(14)
    data = tmp_path / "lines.txt"
    with open(data, "w") as f:
        for _ in range(1_000_000):
            f.write(f"{rng.randrange(10**9):09d} "
                    f"{'x' * rng.randrange(40)}\n")
    sort = need("sort")
    for flags in (["-n"], ["-k2,2", "-k1,1r"]):
        out = both([sort, *flags, str(data)], env=None)
        assert out.count(b"\n") == 1_000_000
    # the sorted order, independently
    want = hashlib.sha256(b"".join(sorted(data.read_bytes()
                                          .splitlines(keepends=True))))
    got = run([sort, str(data)], on_goalloc=True,
              env=goalloc_env(LC_ALL="C")).stdout
    assert hashlib.sha256(got).hexdigest() == want.hexdigest()


def test_threads_cross_frees_and_fork(tmp_path: Path) -> None:
    prog = compile_c(PRELOAD_SRC / "mtalloc.c", tmp_path / "mtalloc")
    out = both([str(prog), "4", "60000", "fork"])
    assert b" 0 errors" in out and b"exit status 0" in out


# ---- redis ----------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_cli(port: int, text: str) -> bytes:
    return subprocess.run([need("redis-cli"), "-p", str(port), "--raw"],
                          input=text.encode(), capture_output=True,
                          check=True, timeout=300).stdout


def wait_for(port: int, server: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        assert server.poll() is None, "redis-server exited"
        p = subprocess.run([need("redis-cli"), "-p", str(port), "ping"],
                           capture_output=True, timeout=30)
        if p.stdout.strip() == b"PONG":
            return
        time.sleep(0.05)
    raise AssertionError("redis-server did not answer")


def redis_session(tmp_path: Path, on_goalloc: bool) -> tuple[bytes, bytes]:
    """A redis-server on goalloc or glibc: redis-benchmark, then keys
    written and read back.  Returns (the read-back, the benchmark)."""
    port = free_port()
    env = goalloc_env() if on_goalloc else plain_env()
    server = subprocess.Popen(
        [need("redis-server"), "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(port, server)
        bench = subprocess.run(
            [need("redis-benchmark"), "-p", str(port), "-q", "-n", "20000",
             "-r", "5000", "-d", "100", "-t",
             "set,get,incr,lpush,lpop,sadd,hset,lrange_100"],
            capture_output=True, check=True, timeout=300).stdout
        rng = random.Random(6399)
        values = {f"key:{i}": "".join(rng.choices("abcdefgh", k=rng
                                                  .randrange(1, 3000)))
                  for i in range(4000)}
        redis_cli(port, "".join(f"SET {k} {v}\n" for k, v in values.items()))
        redis_cli(port, "".join(f"APPEND {k} !\n" for k in list(values)[::3]))
        redis_cli(port, "".join(f"DEL {k}\n" for k in list(values)[1::5]))
        got = redis_cli(port, "".join(f"GET {k}\n" for k in values))
        want = "".join("\n" if i % 5 == 1 else
                       v + ("!" if i % 3 == 0 else "") + "\n"
                       for i, v in enumerate(values.values()))
        assert got.decode() == want, "a key did not read back intact"
        redis_cli(port, "SHUTDOWN NOSAVE\n")
        assert server.wait(timeout=60) == 0, server.stderr
        return got, bench
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_redis_server(tmp_path: Path) -> None:
    ours, bench = redis_session(tmp_path, on_goalloc=True)
    glibc, _ = redis_session(tmp_path, on_goalloc=False)
    assert ours == glibc
    lines = bench.replace(b"\r", b"\n").splitlines()
    for test in (b"SET:", b"GET:", b"INCR:", b"LPUSH:", b"LPOP:", b"SADD:",
                 b"HSET:", b"LRANGE_100 (first 100 elements):"):
        assert any(line.startswith(test) and line.endswith(b" msec") and
                   b" requests per second" in line for line in lines), test
