//===- ReductionPlanTest.cpp - kiln::conversion::planReductionSplit -------===//
//
// The split of a reduction over few kept positions (ReductionPlan.h): the
// lowering, the row groups and the tests' models of the order all follow
// it, so its answers are pinned here for the kinds of shapes it meets.
//
//===----------------------------------------------------------------------===//

#include "kiln/Conversion/ReductionPlan.h"

#include <gtest/gtest.h>

#include <optional>

namespace {

using kiln::conversion::planReductionSplit;
using kiln::conversion::ReductionSplit;
using kiln::conversion::rowSegments;

void expectSplit(std::optional<ReductionSplit> split, int64_t dim,
                 int64_t segments, int64_t length, int64_t rest) {
  ASSERT_TRUE(split.has_value());
  EXPECT_EQ(split->dim, dim);
  EXPECT_EQ(split->segments, segments);
  EXPECT_EQ(split->length, length);
  EXPECT_EQ(split->rest, rest);
}

TEST(ReductionPlan, EvenSplits) {
  // One line of 65536 f32: 16 segments of the minimum 4096, no rest.
  expectSplit(planReductionSplit({65536}, {true}, 4), 0, 16, 4096, 0);
  // 4 rows of 40960: at most 256 per row wanted, 10 segments' worth: 8.
  expectSplit(planReductionSplit({4, 40960}, {false, true}, 4), 1, 8, 5120, 0);
}

TEST(ReductionPlan, UnevenSplits) {
  // A prime-ish line: 128 segments of 7812 rounded down to 16 f32 (whole
  // 64-byte lines), the 579 elements after them the rest.
  expectSplit(planReductionSplit({1000003}, {true}, 4), 0, 128, 7808, 579);
  // Even but not line-aligned (4000000 / 512 = 7812.5): aligned anyway.
  expectSplit(planReductionSplit({4000000}, {true}, 4), 0, 512, 7808, 2304);
  // f64: 8 elements to a line.
  expectSplit(planReductionSplit({2, 70001}, {false, true}, 8), 1, 16, 4368,
              113);
  // The same positions whichever dim is innermost: a column split (dim 0
  // of [70001, 20]) cuts as the rows of its transpose do.
  expectSplit(planReductionSplit({70001, 20}, {true, false}, 4), 0, 16, 4368,
              113);
  expectSplit(planReductionSplit({20, 70001}, {false, true}, 4), 1, 16, 4368,
              113);
}

TEST(ReductionPlan, RestIsBounded) {
  // i8: 64 elements to a line. 1024 segments would leave 64512 elements
  // after them, 512 31744: 256 segments leave 15360, under 16384.
  expectSplit(planReductionSplit({4258816}, {true}, 1), 0, 256, 16576, 15360);
}

TEST(ReductionPlan, OutermostDimThatSplits) {
  // Dims 0 and 2 of [3, 5, 100001] reduced: dim 0 has too few positions
  // for a line per segment, so dim 2 splits; its rest counts 3 times.
  expectSplit(planReductionSplit({3, 5, 100001}, {true, false, true}, 4), 2, 64,
              1552, 673);
  // Dim 0 of [40, 2, 1000] takes 2 segments of 16 positions; the 8 after
  // them hold 8 x 1000 elements, within the bound.
  expectSplit(planReductionSplit({40, 2, 1000}, {true, false, true}, 4), 0, 2,
              16, 8);
}

TEST(ReductionPlan, NotSplit) {
  // Enough kept positions, too few elements, or nothing to compute.
  EXPECT_FALSE(planReductionSplit({1024, 100003}, {false, true}, 4));
  EXPECT_FALSE(planReductionSplit({8191}, {true}, 4));
  EXPECT_FALSE(planReductionSplit({0, 65536}, {false, true}, 4));
}

TEST(ReductionPlan, RowSegments) {
  // A row group follows splits of up to 16 segments, with their rest.
  expectSplit(rowSegments(2, 40000, 4), 1, 8, 4992, 64);
  expectSplit(rowSegments(1024, 40000, 4), 1, 1, 40000, 0);
  EXPECT_FALSE(rowSegments(1, 1 << 20, 4));
}

} // namespace
