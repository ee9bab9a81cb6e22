//===- SelectionPlanTest.cpp - kiln::runtime selection plans --------------===//
//
// The selection plans of include/kiln/Runtime/SelectionPlan.h: the runtime
// kernels and the lowering's remarks both follow them, so their boundaries
// are pinned here.
//
//===----------------------------------------------------------------------===//

#include "kiln/Runtime/SelectionPlan.h"

#include <gtest/gtest.h>

namespace {

using namespace kiln::runtime;

TEST(SelectionPlan, SampledSelection) {
  // f64/i64 with k above 64 and at least n / 128.
  EXPECT_TRUE(useSampledSelection(32768, 1024));
  EXPECT_TRUE(useSampledSelection(65536, 512));
  EXPECT_FALSE(useSampledSelection(65536, 511));
  EXPECT_FALSE(useSampledSelection(4096, 64));
  EXPECT_TRUE(useSampledSelection(4096, 65));
  // Short rows with many winners (n <= 16 k, n <= 1024) stay with direct
  // selection.
  EXPECT_FALSE(useSampledSelection(1024, 100));
  EXPECT_TRUE(useSampledSelection(1025, 100));
  EXPECT_FALSE(useSampledSelection(1000, 65));
  EXPECT_TRUE(useSampledSelection(1041, 65));
}

TEST(SelectionPlan, RowParts) {
  // Fewer rows than threads, rows of 2^16 or more: a part per thread, each
  // at least 2^14 long.
  EXPECT_EQ(selectionRowParts(1, 1 << 20, 2), 2);
  EXPECT_EQ(selectionRowParts(1, 1 << 20, 16), 16);
  EXPECT_EQ(selectionRowParts(1, 1 << 16, 16), 4);
  EXPECT_EQ(selectionRowParts(3, (1 << 17) + 77, 7), 7);
  // Enough rows, or short ones: a thread per row.
  EXPECT_EQ(selectionRowParts(2, 1 << 20, 2), 1);
  EXPECT_EQ(selectionRowParts(1, (1 << 16) - 1, 2), 1);
  EXPECT_EQ(selectionRowParts(1, 1 << 20, 1), 1);
}

TEST(SelectionPlan, SampledClaimsItsOwnRows) {
  // The runtime asks bound, then direct, then sampled selection: a row
  // sampled selection claims is neither of the others'.
  for (int64_t n : {16, 100, 1024, 1025, 4096, 32768, 32769, 1 << 20})
    for (int64_t k : {1, 16, 17, 32, 33, 64, 65, 128, 1024, 4096}) {
      if (k > n || !useSampledSelection(n, k))
        continue;
      EXPECT_FALSE(useBoundSelection(n, k, /*f32=*/false))
          << "n = " << n << ", k = " << k;
      EXPECT_FALSE(useDirectSelection(n, k)) << "n = " << n << ", k = " << k;
    }
}

} // namespace
