#!/bin/sh
# Regenerate tests/golden/go113/*.json: build tools/go113 with a go1.13.8
# toolchain and run every script of goalloc/golden.py on it, with each
# GOGC, GOMAXPROCS=1 and GODEBUG=gcstoptheworld=1 (docs/gc-golden.md).
#
# GOROOT113: a go1.13.8 tree built with make.bash (default /work/go113):
#   git --git-dir=<golang/go mirror> archive go1.13.8 | tar -x -C /work/go113
#   cd /work/go113/src && GOROOT_BOOTSTRAP=$(go env GOROOT) CGO_ENABLED=0 ./make.bash
# Run from the repository root (with goalloc built in place).
set -eu
GOROOT113=${GOROOT113:-/work/go113}
out=tests/golden/go113
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp tools/go113/main.go "$tmp/"
(cd "$tmp" && GOROOT="$GOROOT113" GO111MODULE=off GOPATH="$tmp/gopath" \
    GOCACHE="$tmp/cache" CGO_ENABLED=0 "$GOROOT113/bin/go" build -o go113 main.go)
"$tmp/go113" 2>&1 | grep -q usage
mkdir -p "$out"
godebug=$(python3 -c 'import goalloc.golden as g; print(g.GODEBUG)')
for name in $(python3 -c 'import goalloc.golden as g; print(*g.SCRIPTS)'); do
    python3 -m goalloc.golden "$name" "$tmp/$name.ops"
    for gogc in $(python3 -c 'import goalloc.golden as g; print(*g.GOGCS)'); do
        GOMAXPROCS=1 GODEBUG="$godebug" GOGC="$gogc" \
            "$tmp/go113" "$tmp/$name.ops" > "$tmp/run.json"
        python3 - "$name" "$tmp/$name.ops" "$tmp/run.json" \
            "$out/$name-gogc$gogc.json" <<'PY'
import hashlib, json, sys
name, ops, run, dst = sys.argv[1:]
doc = json.load(open(run))
doc = {"script": name,
       "script_sha256": hashlib.sha256(open(ops, "rb").read()).hexdigest(),
       **doc}
with open(dst, "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
PY
        echo "$out/$name-gogc$gogc.json"
    done
done
