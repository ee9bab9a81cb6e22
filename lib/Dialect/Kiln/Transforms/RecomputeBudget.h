//===- RecomputeBudget.h - What recomputed values cost ----------*- C++ -*-===//
//
// kiln-fuse-elementwise's rule (FuseElementwise.cpp) for when a value with
// users outside a kernel is recomputed in it rather than stored and read
// back. (Column groups, ColumnGroups.cpp, still judge one value at a time,
// by cheaperToRecompute: they form only around reductions over a middle
// dim, at most max-group-ops ops each.)
//
// Recomputing a value is cheaper than storing it when the inputs it adds to
// the kernel are at most twice the size of its result: a stored result is
// written once and read back. (Groups form from the end, so once every later
// user recomputes a value, the first group takes it as a member and it is
// never stored.) `exp(x - amax(x))` used by two kernels reads x and a row
// vector, a little more than its result, and is recomputed; an i1 mask of
// two f32 tensors (8 bytes per element against 1) is stored.
//
// A recomputed value's operands may be recomputed in turn: the chain of
// values reached from the first (the one the kernel would otherwise read
// stored) is charged as a whole, each further value replacing its own bytes
// among the chain's inputs with those of its operands, up to kChainBudget
// times the first value's size. Judged one value at a time, every step of a
// residual stream (x + f(x) layer after layer, each value read by the next
// layer's kernels) added one input of its size, and each layer's kernels
// recomputed every layer before: a 12-layer transformer forward (kiln-run,
// 1 / 2 threads) read 12 layers' matmul results in its last layer's
// kernels, 17.8 / 10.7 ms, its IR grew with the square of the depth, 11.6 s
// to compile (its gradient 45 s); with the chains charged, 15.1 / 9.5 ms and
// 1.3 s (gradient 5-7.5 s), the same bits. The budget: a stored value costs
// more than its write and read (the kernel that stores it may read inputs
// for it alone, and a store reads its line first), and a stream of sums 3
// deep (8 MB each, over dim 0) kept its time with 3 (2.0 / 0.8 ms) where 2
// stored a value in a kernel of its own (2.5 / 1.2 ms); 12 deep 13.8 / 5.4
// ms -> 6.6 / 4.2 with 3, 5.5 / 3.7 with 2.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_LIB_DIALECT_KILN_TRANSFORMS_RECOMPUTEBUDGET_H
#define KILN_LIB_DIALECT_KILN_TRANSFORMS_RECOMPUTEBUDGET_H

#include "kiln/Dialect/Kiln/IR/KilnOps.h"

#include "mlir/IR/Operation.h"
#include "llvm/ADT/DenseMap.h"

#include <algorithm>
#include <cstdint>

namespace kiln {

/// The chains of values one kernel recomputes, and what each reads.
class RecomputeBudget {
public:
  static constexpr int64_t kChainBudget = 3;

  /// Whether `p`, an operand of `user` (an op of the kernel, recomputed
  /// itself when it joined a chain here), is recomputed in the kernel,
  /// given the bytes of new inputs its operands add; then charges it to
  /// its chain.
  bool recompute(mlir::Operation *p, mlir::Operation *user, int64_t added) {
    mlir::Operation *chain = chainOf(p, user);
    int64_t cost = costWith(p, user, added);
    if (cost > limit(chain, p))
      return false;
    costs[chain] = cost;
    chainRoot[p] = chain;
    return true;
  }

  /// Whether recomputing `p` on its own, reading `added` bytes of new
  /// inputs, is cheaper than storing it: the rule for a chain's first
  /// value (and for every value a column group recomputes).
  static bool cheaperToRecompute(mlir::Operation *p, int64_t added) {
    return added <= limit(p, p);
  }

  /// The chain `p` would join: its user's, when that is recomputed, else
  /// its own.
  mlir::Operation *chainOf(mlir::Operation *p, mlir::Operation *user) const {
    if (mlir::Operation *chain = chainRoot.lookup(user))
      return chain;
    return p;
  }

  /// The bytes of new inputs `p`'s chain reads with `p` recomputed: `p`'s
  /// stored bytes leave them, its operands' (`added`) join.
  int64_t costWith(mlir::Operation *p, mlir::Operation *user,
                   int64_t added) const {
    mlir::Operation *chain = chainOf(p, user);
    if (chain == p)
      return added;
    return std::max<int64_t>(0, costs.lookup(chain) -
                                    tensorByteSize(p->getResult(0)) + added);
  }

  /// The most bytes of new inputs the chain from `chain` may read with `p`
  /// recomputed: twice the first value's size for the value itself, three
  /// times for the chain's further values.
  static int64_t limit(mlir::Operation *chain, mlir::Operation *p) {
    return (chain == p ? 2 : kChainBudget) *
           tensorByteSize(chain->getResult(0));
  }

private:
  llvm::DenseMap<mlir::Operation *, mlir::Operation *> chainRoot;
  llvm::DenseMap<mlir::Operation *, int64_t> costs;
};

} // namespace kiln

#endif // KILN_LIB_DIALECT_KILN_TRANSFORMS_RECOMPUTEBUDGET_H
