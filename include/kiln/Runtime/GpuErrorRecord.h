//===- GpuErrorRecord.h - The GPU target's index error record ---*- C++ -*-===//
//
// Kernels report a bad index (kiln.report_index_error) into a record in
// device memory that the runtime clears before a run and reads after it.
// The record keeps the least (site, index, size) of the run's reports, as
// the CPU runtime does, so the message does not depend on which thread got
// there first. Its words (i64, all zero when cleared):
//
//   kReported  1 once any report was recorded;
//   kSite, kIndex, kSize  the least report;
//   kLock      held (1) by the kernel thread comparing and updating them;
//   kFilter    INT64_MAX minus the least filter key of the reports so far
//              (atomic max): a report whose key is greater cannot be the
//              least, and skips the lock.
//
// The filter key is (site << 48) | (index clamped to 48 bits, biased to
// non-negative), sites from kFilterSiteLimit on all keyed alike: a map
// that never orders two reports against their (site, index, size) order,
// so the least report always takes the lock and compares exactly there.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_GPUERRORRECORD_H
#define KILN_RUNTIME_GPUERRORRECORD_H

#include <cstdint>

namespace kiln::runtime::gpu_error_record {

enum Word : int64_t {
  kReported = 0,
  kSite = 1,
  kIndex = 2,
  kSize = 3,
  kLock = 4,
  kFilter = 5,
  kWords = 6
};

/// Bits of the filter key below the site.
constexpr int64_t kFilterIndexBits = 48;
/// Sites from here on share one filter key (their reports all take the
/// lock).
constexpr int64_t kFilterSiteLimit =
    (int64_t(1) << (63 - kFilterIndexBits)) - 1;

} // namespace kiln::runtime::gpu_error_record

#endif // KILN_RUNTIME_GPUERRORRECORD_H
