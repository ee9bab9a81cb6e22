//===- Internal.h - Shared internals of the embedding API -------*- C++ -*-===//

#ifndef KILN_LIB_API_INTERNAL_H
#define KILN_LIB_API_INTERNAL_H

#include "kiln/kiln.h"

#include "kiln/Runtime/Executable.h"

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::detail {

inline runtime::DType toRuntime(DType d) {
  switch (d) {
  case DType::Float32:
    return runtime::DType::F32;
  case DType::Float64:
    return runtime::DType::F64;
  case DType::Int64:
    return runtime::DType::I64;
  case DType::Int32:
    return runtime::DType::I32;
  case DType::Bool:
    return runtime::DType::Bool;
  }
  return runtime::DType::F32;
}

inline bool isFloat(DType d) {
  return d == DType::Float32 || d == DType::Float64;
}

/// PyTorch's promotion of two tensor dtypes: bool < i32 < i64 < f32 < f64.
inline DType promote(DType a, DType b) {
  auto rank = [](DType d) {
    switch (d) {
    case DType::Bool:
      return 0;
    case DType::Int32:
      return 1;
    case DType::Int64:
      return 2;
    case DType::Float32:
      return 3;
    case DType::Float64:
      return 4;
    }
    return 0;
  };
  return rank(a) >= rank(b) ? a : b;
}

/// torch.result_type of tensors: those with dims decide, rank-0 ones
/// raise it only when of a higher category (bool < integer < float).
DType resultTypeOf(const std::vector<Tensor> &tensors);

/// The number of elements of `shape`; a negative size, or more elements than
/// a kiln tensor may hold (2^59), is an error of `op` at `where`.
int64_t elementCount(const std::vector<int64_t> &shape, std::string_view op,
                     SourceLocation where);

/// Records `op(inputs)` after checking it with the dialect (result types
/// inferred, or `types` for ops whose results are not inferable).
Tensor makeOp(const std::string &op, std::vector<Tensor> inputs,
              const std::string &attrs, SourceLocation where,
              const std::vector<runtime::TensorSpec> *types = nullptr);

struct OpSignature;

/// The signature of `op` applied to `inputs` (makeOp's check), to record
/// nodes of it later without checking again.
std::shared_ptr<const OpSignature>
signatureOf(const std::string &op, const std::vector<Tensor> &inputs,
            const std::string &attrs, SourceLocation where,
            const std::vector<runtime::TensorSpec> *types = nullptr);

/// Records a node of `signature`, an op without operands.
Tensor makeOp(std::shared_ptr<const OpSignature> signature,
              SourceLocation where);

// Argument checks of the functions written with the ops (Composite.cpp,
// Functional.cpp): each throws kiln::Error naming `fn`, at `where`.

/// "[2, 3]".
std::string shapeText(const std::vector<int64_t> &shape);
/// `x` is defined.
void requireDefined(const char *fn, const Tensor &x, SourceLocation where);
/// `x` is a float tensor, as PyTorch requires of `fn`.
void requireFloat(const char *fn, const Tensor &x, SourceLocation where);
/// `dim` in [-size, size) counted from 0 (PyTorch's wrap: a rank-0 tensor
/// takes -1 and 0, `size` is then 1).
int64_t wrapDim(const char *fn, int64_t dim, int64_t size,
                SourceLocation where);
/// The number of elements `dims` (empty: all) of `x` reduce, the dims
/// checked: in range, none twice.
int64_t reducedCount(const char *fn, const Tensor &x,
                     const std::vector<int64_t> &dims, SourceLocation where);
/// A loss's `reduction` is "mean", "sum" or "none".
void checkReduction(const char *fn, const std::string &reduction,
                    SourceLocation where);
/// A loss's elementwise values reduced by `reduction` (checked before).
Tensor reduceLoss(const Tensor &loss, const std::string &reduction,
                  SourceLocation where);
/// `a` and `b` in their promoted dtype, which must be a float (PyTorch's
/// losses of integers are errors). Promoted as tensors with dims: F.*'s
/// losses broadcast their operands first, so a rank-0 float64 target
/// makes a float32 input's loss float64.
std::pair<Tensor, Tensor> floatOperands(const char *fn, const Tensor &a,
                                        const Tensor &b, SourceLocation where);

} // namespace kiln::detail

#endif // KILN_LIB_API_INTERNAL_H
