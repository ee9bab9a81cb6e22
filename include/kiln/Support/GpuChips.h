//===- GpuChips.h - The NVIDIA architectures Kiln compiles for -*- C++ -*-===//
//
// One table, shared by the GPU pipeline, kiln-compile's --gpu-arch and the
// CUDA runtime's choice of chip for the device it finds.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_SUPPORT_GPUCHIPS_H
#define KILN_SUPPORT_GPUCHIPS_H

#include "llvm/ADT/StringRef.h"

#include <optional>
#include <string>

namespace kiln {

/// A supported architecture and the PTX ISA version it first appeared in
/// (LLVM aborts on a chip without a matching feature).
struct GpuChip {
  const char *name;      // "sm_90"
  int computeCapability; // 90: major * 10 + minor
  const char *feature;   // "+ptx80"
};

inline constexpr GpuChip kGpuChips[] = {
    {"sm_70", 70, "+ptx60"},   {"sm_72", 72, "+ptx61"},
    {"sm_75", 75, "+ptx63"},   {"sm_80", 80, "+ptx70"},
    {"sm_86", 86, "+ptx71"},   {"sm_87", 87, "+ptx74"},
    {"sm_89", 89, "+ptx78"},   {"sm_90", 90, "+ptx80"},
    {"sm_100", 100, "+ptx86"}, {"sm_120", 120, "+ptx87"}};

/// Checks a GPU architecture name; returns the PTX feature the NVPTX backend
/// needs for it (e.g. "+ptx80" for sm_90), or an empty string when the chip
/// is not supported.
inline std::string getPtxFeatureForChip(llvm::StringRef chip) {
  for (const GpuChip &entry : kGpuChips)
    if (chip == entry.name)
      return entry.feature;
  return "";
}

/// The supported GPU architectures for messages: "sm_70, sm_72, ..., sm_120".
inline std::string getSupportedChipList() {
  std::string list;
  for (const GpuChip &entry : kGpuChips)
    list += (list.empty() ? "" : ", ") + std::string(entry.name);
  return list;
}

/// The chip to compile for on a device of compute capability major.minor:
/// the newest supported one not newer than the device (PTX is compiled
/// forward by the driver: sm_100 PTX runs on an sm_103 device, sm_80 PTX on
/// an sm_85 one), or none when the device is older than every supported
/// chip.
inline std::optional<std::string> getChipForDevice(int major, int minor) {
  int capability = major * 10 + minor;
  const GpuChip *best = nullptr;
  for (const GpuChip &entry : kGpuChips)
    if (entry.computeCapability <= capability &&
        (!best || entry.computeCapability > best->computeCapability))
      best = &entry;
  if (!best)
    return std::nullopt;
  return std::string(best->name);
}

} // namespace kiln

#endif // KILN_SUPPORT_GPUCHIPS_H
