//===- HostTensor.cpp - Tensors in host memory, .npy I/O ------------------===//

#include "kiln/Runtime/HostTensor.h"

#include "HugePages.h"
#include "kiln/Support/ShapeLimits.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

using namespace kiln::runtime;
using llvm::StringRef;

size_t kiln::runtime::dtypeSize(DType dtype) {
  switch (dtype) {
  case DType::F32:
  case DType::I32:
    return 4;
  case DType::F64:
  case DType::I64:
    return 8;
  case DType::Bool:
    return 1;
  }
  llvm_unreachable("unknown dtype");
}

StringRef kiln::runtime::dtypeName(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return "f32";
  case DType::F64:
    return "f64";
  case DType::I64:
    return "i64";
  case DType::I32:
    return "i32";
  case DType::Bool:
    return "i1";
  }
  llvm_unreachable("unknown dtype");
}

void HostTensor::FreeDeleter::operator()(void *p) const {
  if (owned)
    std::free(p);
}

HostTensor HostTensor::view(DType dtype, std::vector<int64_t> shape,
                            void *data) {
  return borrowed(dtype, std::move(shape), data, nullptr);
}

HostTensor HostTensor::borrowed(DType dtype, std::vector<int64_t> shape,
                                const void *data,
                                std::shared_ptr<const void> owner) {
  HostTensor tensor;
  tensor.dtype = dtype;
  tensor.shape = std::move(shape);
  FreeDeleter deleter(false);
  deleter.owner = std::move(owner);
  tensor.storage = std::unique_ptr<void, FreeDeleter>(const_cast<void *>(data),
                                                      std::move(deleter));
  return tensor;
}

HostTensor::HostTensor(DType dtype, std::vector<int64_t> shape)
    : dtype(dtype), shape(std::move(shape)) {
  storage.reset(allocateHostBuffer(std::max<size_t>(getByteSize(), 1)));
}

int64_t HostTensor::getNumElements() const {
  int64_t count = 1;
  for (int64_t size : shape)
    count *= size;
  return count;
}

std::string kiln::runtime::tensorTypeString(DType dtype,
                                            const std::vector<int64_t> &shape) {
  std::string text = "tensor<";
  for (int64_t size : shape)
    text += std::to_string(size) + "x";
  return text + dtypeName(dtype).str() + ">";
}

std::string HostTensor::typeString() const {
  return tensorTypeString(dtype, shape);
}

//===----------------------------------------------------------------------===//
// .npy reading
//===----------------------------------------------------------------------===//

namespace {

llvm::Error npyError(StringRef name, const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 name + ": " + message);
}

/// Finds `'key':` in the header dict and returns the text after the colon.
std::optional<StringRef> headerValue(StringRef header, StringRef key) {
  for (char quote : {'\'', '"'}) {
    std::string pattern = std::string(1, quote) + key.str() + quote;
    size_t pos = header.find(pattern);
    if (pos == StringRef::npos)
      continue;
    StringRef rest = header.drop_front(pos + pattern.size()).ltrim();
    if (!rest.consume_front(":"))
      return std::nullopt;
    return rest.ltrim();
  }
  return std::nullopt;
}

} // namespace

llvm::Expected<HostTensor>
kiln::runtime::parseNpy(StringRef bytes, StringRef name,
                        std::shared_ptr<const void> owner) {
  if (!bytes.starts_with("\x93NUMPY"))
    return npyError(name, "not a .npy file (missing the \\x93NUMPY magic)");
  if (bytes.size() < 10)
    return npyError(name, "truncated .npy header");
  unsigned major = static_cast<unsigned char>(bytes[6]);
  size_t headerLength, headerStart;
  if (major == 1) {
    headerLength = static_cast<unsigned char>(bytes[8]) |
                   (static_cast<unsigned char>(bytes[9]) << 8);
    headerStart = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12)
      return npyError(name, "truncated .npy header");
    headerLength = 0;
    for (int i = 3; i >= 0; --i)
      headerLength =
          (headerLength << 8) | static_cast<unsigned char>(bytes[8 + i]);
    headerStart = 12;
  } else {
    return npyError(name, "unsupported .npy format version " +
                              llvm::Twine(major) + " (1.0-3.0 are supported)");
  }
  if (bytes.size() < headerStart + headerLength)
    return npyError(name, "truncated .npy header");
  StringRef header = bytes.substr(headerStart, headerLength);

  std::optional<StringRef> descr = headerValue(header, "descr");
  std::optional<StringRef> fortran = headerValue(header, "fortran_order");
  std::optional<StringRef> shapeText = headerValue(header, "shape");
  if (!descr || !fortran || !shapeText)
    return npyError(name, "malformed .npy header (needs descr, fortran_order "
                          "and shape)");
  if (descr->empty() || (descr->front() != '\'' && descr->front() != '"'))
    return npyError(name, "malformed descr in the .npy header");
  StringRef dtypeText = descr->drop_front().take_until(
      [](char c) { return c == '\'' || c == '"'; });
  DType dtype;
  if (dtypeText == "<f4")
    dtype = DType::F32;
  else if (dtypeText == "<f8")
    dtype = DType::F64;
  else if (dtypeText == "<i8")
    dtype = DType::I64;
  else if (dtypeText == "<i4")
    dtype = DType::I32;
  else if (dtypeText == "|b1")
    dtype = DType::Bool;
  else if (dtypeText.starts_with(">"))
    return npyError(name,
                    "big-endian data ('" + dtypeText + "') is not supported");
  else if (dtypeText.starts_with("|O"))
    return npyError(name, "object arrays are not supported");
  else
    return npyError(name, "unsupported dtype '" + dtypeText +
                              "' (supported: <f4 <f8 <i8 <i4 |b1)");
  if (fortran->starts_with("True"))
    return npyError(name, "Fortran-order arrays are not supported (save a "
                          "C-order copy)");
  if (!fortran->starts_with("False"))
    return npyError(name, "malformed fortran_order in the .npy header");

  if (!shapeText->consume_front("("))
    return npyError(name, "malformed shape in the .npy header");
  StringRef dims = shapeText->take_until([](char c) { return c == ')'; });
  if (dims.size() == shapeText->size())
    return npyError(name, "malformed shape in the .npy header");
  std::vector<int64_t> shape;
  llvm::SmallVector<StringRef> parts;
  dims.split(parts, ',');
  for (StringRef part : parts) {
    part = part.trim();
    if (part.empty())
      continue;
    int64_t size;
    if (part.getAsInteger(10, size) || size < 0)
      return npyError(name,
                      "malformed dimension '" + part + "' in the .npy shape");
    shape.push_back(size);
  }
  // Reject shapes a kiln tensor cannot have before allocating anything.
  std::optional<int64_t> addressable = kiln::getAddressableElementCount(shape);
  if (!addressable)
    return npyError(name,
                    "the .npy shape " + kiln::unaddressableShapeReason(shape));
  int64_t count = *addressable;
  size_t dataStart = headerStart + headerLength;
  size_t expected = static_cast<size_t>(count) * dtypeSize(dtype);
  size_t available = bytes.size() - dataStart;
  if (available < expected)
    return npyError(name, "truncated .npy data: expected " +
                              llvm::Twine(expected) + " bytes, found " +
                              llvm::Twine(available));
  if (available > expected)
    return npyError(name, "trailing bytes after the .npy data: expected " +
                              llvm::Twine(expected) + " bytes, found " +
                              llvm::Twine(available));
  const char *data = bytes.data() + dataStart;
  HostTensor tensor;
  // Data of kHugePageThreshold and more is copied all the same: its copy
  // lies on huge pages (allocateHostBuffer), the mapping on 4 KiB pages,
  // whose TLB misses slowed kernels streaming it (a sum of 64 MB read in
  // place: 1.55-1.99 ms at 1 thread against 1.42-1.62 from the copy).
  if (owner && expected > 0 && expected < kHugePageThreshold &&
      reinterpret_cast<uintptr_t>(data) % dtypeSize(dtype) == 0) {
    tensor =
        HostTensor::borrowed(dtype, std::move(shape), data, std::move(owner));
  } else {
    tensor = HostTensor(dtype, std::move(shape));
    std::memcpy(tensor.data(), data, expected);
  }
  if (dtype == DType::Bool)
    for (int64_t i = 0; i < count; ++i)
      if (tensor.as<uint8_t>()[i] > 1)
        return npyError(name, "bool data holds a value other than 0 or 1");
  return tensor;
}

llvm::Expected<HostTensor> kiln::runtime::readNpy(StringRef path,
                                                  bool inPlace) {
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  if (!buffer)
    return npyError(path, "cannot read: " + buffer.getError().message());
  StringRef bytes = (*buffer)->getBuffer();
  std::shared_ptr<const void> owner;
  if (inPlace &&
      (*buffer)->getBufferKind() == llvm::MemoryBuffer::MemoryBuffer_MMap)
    owner = std::shared_ptr<llvm::MemoryBuffer>(std::move(*buffer));
  return parseNpy(bytes, path, std::move(owner));
}

llvm::Error kiln::runtime::writeNpy(StringRef path, const HostTensor &tensor) {
  std::string descr;
  switch (tensor.getDType()) {
  case DType::F32:
    descr = "<f4";
    break;
  case DType::F64:
    descr = "<f8";
    break;
  case DType::I64:
    descr = "<i8";
    break;
  case DType::I32:
    descr = "<i4";
    break;
  case DType::Bool:
    descr = "|b1";
    break;
  }
  std::string shape = "(";
  for (int64_t size : tensor.getShape())
    shape += std::to_string(size) + ", ";
  if (tensor.getShape().size() > 1)
    shape.resize(shape.size() - 2);
  else if (tensor.getShape().size() == 1)
    shape.resize(shape.size() - 1); // "(3,)"
  shape += ")";
  std::string header = "{'descr': '" + descr +
                       "', 'fortran_order': False, 'shape': " + shape + ", }";
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_None);
  if (ec)
    return llvm::createStringError(ec, "cannot write " + path + ": " +
                                           ec.message());
  os << "\x93NUMPY" << char(1) << char(0) << char(header.size() & 0xff)
     << char(header.size() >> 8) << header;
  os.write(static_cast<const char *>(tensor.data()), tensor.getByteSize());
  os.close();
  if (os.has_error())
    return llvm::createStringError(os.error(), "cannot write " + path);
  return llvm::Error::success();
}

//===----------------------------------------------------------------------===//
// PyTorch-style printing
//===----------------------------------------------------------------------===//

namespace {

constexpr int64_t kEdgeItems = 3;    // torch print options: edgeitems
constexpr int64_t kThreshold = 1000; // threshold (summarize above)
constexpr int64_t kLineWidth = 80;   // linewidth

/// Formats elements the way torch._tensor_str._Formatter does (default
/// print options: precision 4; sci mode when the nonzero finite magnitudes
/// span more than 1000x or exceed 1e8 (or fall below 1e-4 for non-integral
/// values); integral floats print as `1.`). Statistics come from the
/// elements that are printed (the summarized ones for large tensors).
class ElementFormatter {
public:
  ElementFormatter(const HostTensor &tensor,
                   const std::vector<int64_t> &printed)
      : tensor(tensor) {
    DType dtype = tensor.getDType();
    if (dtype == DType::F32 || dtype == DType::F64) {
      bool allIntegral = true;
      double maxAbs = 0, minAbs = INFINITY;
      for (int64_t i : printed) {
        double v = value(i);
        if (!std::isfinite(v))
          continue;
        if (v != std::trunc(v))
          allIntegral = false;
        double a = std::fabs(v);
        if (a != 0) {
          maxAbs = std::max(maxAbs, a);
          minAbs = std::min(minAbs, a);
        }
      }
      intMode = allIntegral;
      if (minAbs != INFINITY) {
        if (intMode)
          sciMode = maxAbs / minAbs > 1000.0 || maxAbs > 1e8;
        else
          sciMode = maxAbs / minAbs > 1000.0 || maxAbs > 1e8 || minAbs < 1e-4;
      }
    }
    for (int64_t i : printed)
      width = std::max(width, raw(i).size());
  }

  /// The element right-aligned to the common width.
  std::string format(int64_t i) const {
    std::string text = raw(i);
    return std::string(width - text.size(), ' ') + text;
  }
  size_t getWidth() const { return width; }

private:
  std::string raw(int64_t i) const {
    char buf[64];
    switch (tensor.getDType()) {
    case DType::I64:
      return std::to_string(tensor.as<int64_t>()[i]);
    case DType::I32:
      return std::to_string(tensor.as<int32_t>()[i]);
    case DType::Bool:
      return tensor.as<uint8_t>()[i] ? "True" : "False";
    default:
      break;
    }
    double v = value(i);
    if (std::isnan(v))
      return "nan";
    if (std::isinf(v))
      return v > 0 ? "inf" : "-inf";
    if (sciMode)
      std::snprintf(buf, sizeof(buf), "%.4e", v);
    else if (intMode)
      std::snprintf(buf, sizeof(buf), "%.0f.", v);
    else
      std::snprintf(buf, sizeof(buf), "%.4f", v);
    return buf;
  }
  double value(int64_t i) const {
    return tensor.getDType() == DType::F32 ? tensor.as<float>()[i]
                                           : tensor.as<double>()[i];
  }
  const HostTensor &tensor;
  bool intMode = false, sciMode = false;
  size_t width = 0;
};

/// Mirrors torch._tensor_str._tensor_str_with_formatter.
class TorchPrinter {
public:
  explicit TorchPrinter(const HostTensor &tensor)
      : tensor(tensor), shape(tensor.getShape()),
        summarize(tensor.getNumElements() > kThreshold),
        strides(shape.size(), 1) {
    for (int64_t d = static_cast<int64_t>(shape.size()) - 2; d >= 0; --d)
      strides[d] = strides[d + 1] * shape[d + 1];
  }

  std::string print() {
    std::vector<int64_t> printed;
    collect(0, 0, printed);
    ElementFormatter formatter(tensor, printed);
    if (shape.empty())
      return formatter.format(0);
    return tensorStr(formatter, 0, 0, /*indent=*/7);
  }

private:
  /// Positions shown along a dim of `size` (edges only when summarizing).
  std::vector<int64_t> shown(int64_t size) const {
    std::vector<int64_t> positions;
    bool skip = summarize && size > 2 * kEdgeItems;
    for (int64_t i = 0; i < size; ++i) {
      if (skip && i == kEdgeItems)
        i = size - kEdgeItems;
      positions.push_back(i);
    }
    return positions;
  }
  bool skips(int64_t size) const { return summarize && size > 2 * kEdgeItems; }

  void collect(size_t dim, int64_t base, std::vector<int64_t> &out) const {
    if (dim == shape.size()) {
      out.push_back(base);
      return;
    }
    for (int64_t i : shown(shape[dim]))
      collect(dim + 1, base + i * strides[dim], out);
  }

  std::string vectorStr(const ElementFormatter &f, int64_t base,
                        int64_t indent) const {
    int64_t size = shape.back();
    int64_t elementLength = static_cast<int64_t>(f.getWidth()) + 2;
    int64_t perLine =
        std::max<int64_t>(1, (kLineWidth - indent) / elementLength);
    std::vector<std::string> data;
    for (int64_t i : shown(size)) {
      if (skips(size) && i == size - kEdgeItems)
        data.push_back(" ...");
      data.push_back(f.format(base + i));
    }
    std::string out = "[";
    for (size_t i = 0; i < data.size(); ++i) {
      if (i > 0)
        out += i % perLine == 0 ? ",\n" + std::string(indent + 1, ' ') : ", ";
      out += data[i];
    }
    return out + "]";
  }

  std::string tensorStr(const ElementFormatter &f, size_t dim, int64_t base,
                        int64_t indent) const {
    if (dim + 1 == shape.size())
      return vectorStr(f, base, indent);
    std::vector<std::string> slices;
    int64_t size = shape[dim];
    for (int64_t i : shown(size)) {
      if (skips(size) && i == size - kEdgeItems)
        slices.push_back("...");
      slices.push_back(
          tensorStr(f, dim + 1, base + i * strides[dim], indent + 1));
    }
    std::string separator = "," + std::string(shape.size() - dim - 1, '\n') +
                            std::string(indent + 1, ' ');
    std::string out = "[";
    for (size_t i = 0; i < slices.size(); ++i)
      out += (i ? separator : "") + slices[i];
    return out + "]";
  }

  const HostTensor &tensor;
  const std::vector<int64_t> &shape;
  bool summarize;
  std::vector<int64_t> strides;
};

} // namespace

std::string kiln::runtime::formatTorch(const HostTensor &tensor) {
  const std::vector<int64_t> &shape = tensor.getShape();
  int64_t numel = tensor.getNumElements();
  std::string out = "tensor(";
  if (numel == 0)
    out += "[]";
  else
    out += TorchPrinter(tensor).print();
  switch (tensor.getDType()) {
  case DType::F64:
    out += ", dtype=torch.float64";
    break;
  case DType::I32:
    out += ", dtype=torch.int32";
    break;
  case DType::I64:
    if (numel == 0)
      out += ", dtype=torch.int64";
    break;
  case DType::Bool:
    if (numel == 0)
      out += ", dtype=torch.bool";
    break;
  case DType::F32:
    break;
  }
  if (numel == 0 && shape.size() != 1) {
    out += ", size=(";
    for (size_t d = 0; d < shape.size(); ++d)
      out += (d ? ", " : "") + std::to_string(shape[d]);
    out += shape.size() == 1 ? ",)" : ")";
  }
  return out + ")";
}
