#!/bin/sh
# Sourced on a GPU machine without LLVM (the lent device): unpacks the
# Debian runtime libraries carried in device-libs/ (see docs/gpu.md) into
# /tmp/kiln-prefix and points the loader at them.
set -e
prefix=/tmp/kiln-prefix
if [ ! -d "$prefix" ]; then
  mkdir -p "$prefix"
  for deb in device-libs/*.deb; do dpkg -x "$deb" "$prefix"; done
fi
export LD_LIBRARY_PATH="$prefix/usr/lib/llvm-22/lib:$prefix/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
set +e
