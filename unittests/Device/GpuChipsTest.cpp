//===- GpuChipsTest.cpp - The chip chosen for a device --------------------===//

#include "kiln/Support/GpuChips.h"

#include <gtest/gtest.h>

namespace {

TEST(GpuChips, DeviceGetsTheNewestChipNotNewerThanItself) {
  // Listed chips are used as they are.
  EXPECT_EQ(kiln::getChipForDevice(9, 0), "sm_90");
  EXPECT_EQ(kiln::getChipForDevice(8, 0), "sm_80");
  EXPECT_EQ(kiln::getChipForDevice(7, 0), "sm_70");
  EXPECT_EQ(kiln::getChipForDevice(12, 0), "sm_120");
  // Others get PTX the driver compiles forward: never a newer chip's.
  EXPECT_EQ(kiln::getChipForDevice(10, 3), "sm_100");
  EXPECT_EQ(kiln::getChipForDevice(12, 1), "sm_120");
  EXPECT_EQ(kiln::getChipForDevice(8, 8), "sm_87");
  EXPECT_EQ(kiln::getChipForDevice(11, 0), "sm_100");
  // Older than every listed chip: none (targetDevice reports it).
  EXPECT_EQ(kiln::getChipForDevice(6, 1), std::nullopt);
  EXPECT_EQ(kiln::getChipForDevice(0, 0), std::nullopt);
}

TEST(GpuChips, FeaturesAndList) {
  EXPECT_EQ(kiln::getPtxFeatureForChip("sm_90"), "+ptx80");
  EXPECT_EQ(kiln::getPtxFeatureForChip("sm_100"), "+ptx86");
  EXPECT_EQ(kiln::getPtxFeatureForChip("sm_103"), "");
  EXPECT_EQ(kiln::getPtxFeatureForChip("sm_9"), "");
  EXPECT_EQ(kiln::getSupportedChipList(),
            "sm_70, sm_72, sm_75, sm_80, sm_86, sm_87, sm_89, sm_90, "
            "sm_100, sm_120");
}

} // namespace
