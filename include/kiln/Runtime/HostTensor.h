//===- HostTensor.h - Tensors in host memory, .npy I/O ----------*- C++ -*-===//

#ifndef KILN_RUNTIME_HOSTTENSOR_H
#define KILN_RUNTIME_HOSTTENSOR_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kiln::runtime {

/// Element types a host tensor can hold (the .npy dtypes of tools.md).
enum class DType { F32, F64, I64, I32, Bool };

/// Size in bytes of one element.
size_t dtypeSize(DType dtype);
/// The MLIR spelling (`f32`, `i1`, ...).
llvm::StringRef dtypeName(DType dtype);

/// The MLIR spelling of a tensor type, e.g. `tensor<2x3xf32>`.
std::string tensorTypeString(DType dtype, const std::vector<int64_t> &shape);

/// A dense row-major tensor in 64-byte aligned host memory. A new tensor's
/// contents are uninitialized: readers fill it from a file, kernels write
/// every element of their results.
class HostTensor {
public:
  HostTensor() = default;
  HostTensor(DType dtype, std::vector<int64_t> shape);
  /// A tensor over memory it does not own (not freed; must outlive it).
  static HostTensor view(DType dtype, std::vector<int64_t> shape,
                         void *data);
  /// A tensor over memory `owner` keeps valid (a mapped file), holding
  /// `owner` until it is destroyed (view() is one with no owner). The
  /// memory may be read-only: nothing may write through data().
  static HostTensor borrowed(DType dtype, std::vector<int64_t> shape,
                             const void *data,
                             std::shared_ptr<const void> owner);

  DType getDType() const { return dtype; }
  const std::vector<int64_t> &getShape() const { return shape; }
  int64_t getNumElements() const;
  size_t getByteSize() const { return getNumElements() * dtypeSize(dtype); }
  void *data() { return storage.get(); }
  const void *data() const { return storage.get(); }
  template <typename T> T *as() { return static_cast<T *>(data()); }
  template <typename T> const T *as() const {
    return static_cast<const T *>(data());
  }

  /// The MLIR type spelling, e.g. `tensor<2x3xf32>`.
  std::string typeString() const;

private:
  struct FreeDeleter {
    FreeDeleter() : owned(true) {}
    explicit FreeDeleter(bool owned) : owned(owned) {}
    bool owned;
    /// What keeps borrowed memory valid (released with the tensor).
    std::shared_ptr<const void> owner;
    void operator()(void *p) const;
  };
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::unique_ptr<void, FreeDeleter> storage;
};

/// Reads a .npy file (format 1.0-3.0, C order, little-endian <f4 <f8 <i8 <i4
/// |b1). Malformed, truncated, Fortran-order, big-endian or unsupported
/// files are errors naming the problem. With `inPlace`, a file the system
/// maps into memory (LLVM's MemoryBuffer maps files of 16 KiB and more)
/// whose data is aligned for its element type and smaller than 4 MiB is
/// not copied: the tensor reads the mapping (read-only; it must not be
/// written, and the file must not change while the tensor lives). A copy
/// into fresh memory costs a page fault per 4 KiB page, which on the
/// development machine's virtual machine is about 10 us; larger data is
/// copied onto huge pages, which kernels stream faster than the mapping's
/// 4 KiB pages.
llvm::Expected<HostTensor> readNpy(llvm::StringRef path, bool inPlace = false);

/// Parses .npy bytes; `name` is used in error messages. With `owner`,
/// which keeps `bytes` valid, data aligned for its element type and
/// smaller than 4 MiB is not copied: the tensor reads `bytes` in place and
/// holds `owner`.
llvm::Expected<HostTensor>
parseNpy(llvm::StringRef bytes, llvm::StringRef name,
         std::shared_ptr<const void> owner = nullptr);

/// Writes `tensor` as a version 1.0 .npy file.
llvm::Error writeNpy(llvm::StringRef path, const HostTensor &tensor);

/// Formats like PyTorch's `print(tensor)`: `tensor([1.5000, 2.0000])`.
std::string formatTorch(const HostTensor &tensor);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_HOSTTENSOR_H
