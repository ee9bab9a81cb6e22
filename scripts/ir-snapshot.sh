#!/usr/bin/env bash
# Writes what kiln-opt's pipelines make of IR files, one output per (file,
# pipeline), for comparing two builds byte for byte: a refactoring of a
# pass or of the lowering should leave every output the same.
#
#   scripts/ir-snapshot.sh BUILD_DIR OUT_DIR [FILE.mlir ...]
#
# Without files it takes every .mlir file under test/ and examples/. Each
# runs through --kiln-cpu-pipeline (with and without fusion, and with
# sorted scatters) and --kiln-gpu-pipeline, with --split-input-file; a
# diagnostic and the exit code are part of the output. Then, for two builds:
#
#   scripts/ir-snapshot.sh build-old /tmp/old && scripts/ir-snapshot.sh build /tmp/new
#   diff -r /tmp/old /tmp/new
#
# The numerical tests write the programs they generate under /tmp
# (kiln-random_programs-*/case*/in.mlir, kiln-fusion-*/…): pass some of
# them too, to cover more than the hand-written files.
set -uo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 BUILD_DIR OUT_DIR [FILE.mlir ...]" >&2
  exit 1
fi
opt="$(cd "$1" 2>/dev/null && pwd)/bin/kiln-opt"
if [ ! -x "$opt" ]; then
  echo "$0: no kiln-opt in $1/bin (build first)" >&2
  exit 1
fi
mkdir -p "$2" && out=$(cd "$2" && pwd) || exit 1
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -eq 0 ]; then
  mapfile -t files < <(cd "$root" && find test examples -name '*.mlir' | sort)
  cd "$root"
else
  files=("$@")
fi
# (A pipeline's options follow `=`: kiln-opt takes no `{...}` after the
# pipeline's flag.)
pipelines=(kiln-cpu-pipeline kiln-cpu-pipeline=fuse=false
           kiln-cpu-pipeline=sorted-scatters=true kiln-gpu-pipeline)
count=0
for file in "${files[@]}"; do
  name=$(echo "$file" | tr '/' '_')
  for pipeline in "${pipelines[@]}"; do
    tag=$(echo "$pipeline" | tr '=' '-')
    result="$out/$name.$tag.out"
    timeout 300 "$opt" --split-input-file "--$pipeline" "$file" 2>&1 |
      sed "s|$opt|kiln-opt|g" >"$result"
    echo "exit code ${PIPESTATUS[0]}" >>"$result"
    count=$((count + 1))
  done
done
echo "$count outputs of ${#files[@]} files in $out"
