// RUN: kiln-opt %s --kiln-alias-scopes -split-input-file -verify-diagnostics

// A buffer group is an allocation some argument views, numbered from 0: a
// function of two arguments has groups 0 and 1 at most (a hand-written
// 2^31 once made that many alias scopes, a hang).
// expected-error @+1 {{'kiln.buffer_groups' names buffer group 2147483648, but a function of 2 argument(s) has groups 0 to 1 (-1: unknown)}}
func.func @group_out_of_range(%x: memref<20xf32>, %y: memref<20xf64>)
    attributes {kiln.buffer_groups = array<i64: 2147483648, 1>} {
  return
}

// -----

// expected-error @+1 {{'kiln.buffer_groups' names buffer group 1, but a function of 1 argument(s) has groups 0 to 0 (-1: unknown)}}
func.func @one_argument(%x: memref<20xf32>)
    attributes {kiln.buffer_groups = array<i64: 1>} {
  return
}
