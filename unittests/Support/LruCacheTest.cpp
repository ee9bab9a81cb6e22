//===- LruCacheTest.cpp - kiln::LruCache ----------------------------------===//

#include "kiln/Support/LruCache.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace {

TEST(LruCache, DropsTheLeastRecentlyUsed) {
  kiln::LruCache<int> cache(2);
  cache.insert("a", 1);
  cache.insert("b", 2);
  ASSERT_NE(cache.find("a"), nullptr); // "a" is now the most recent
  cache.insert("c", 3);                // drops "b"
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.find("b"), nullptr);
  ASSERT_NE(cache.find("a"), nullptr);
  EXPECT_EQ(*cache.find("a"), 1);
  EXPECT_EQ(*cache.find("c"), 3);
  EXPECT_EQ(cache.evictions(), 1u);
}

TEST(LruCache, InsertKeepsThePresentValue) {
  kiln::LruCache<std::string> cache(2);
  cache.insert("k", "first");
  cache.insert("other", "x");
  EXPECT_EQ(cache.insert("k", "second"), "first");
  // The insert made "k" the most recent: "other" goes first.
  cache.insert("new", "y");
  EXPECT_EQ(cache.find("other"), nullptr);
  EXPECT_NE(cache.find("k"), nullptr);
  EXPECT_EQ(cache.size(), 2u);
}

TEST(LruCache, CostsBoundTheTotal) {
  kiln::LruCache<std::string> cache(
      10, [](const std::string &value) { return value.size(); });
  cache.insert("a", "aaaa");
  cache.insert("b", "bbbb");
  EXPECT_EQ(cache.totalCost(), 8u);
  cache.insert("c", "cccc"); // 12 > 10: drops "a"
  EXPECT_EQ(cache.find("a"), nullptr);
  EXPECT_EQ(cache.totalCost(), 8u);
  // One entry over the capacity on its own is kept (the one just used).
  cache.insert("huge", std::string(25, 'h'));
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_NE(cache.find("huge"), nullptr);
  EXPECT_EQ(cache.totalCost(), 25u);
  EXPECT_EQ(cache.evictions(), 3u);
}

TEST(LruCache, SmallerCapacityDropsAtOnce) {
  kiln::LruCache<int> cache(4);
  for (int i = 0; i < 4; ++i)
    cache.insert(std::to_string(i), i);
  cache.setCapacity(1);
  EXPECT_EQ(cache.getCapacity(), 1u);
  EXPECT_EQ(cache.size(), 1u);
  ASSERT_NE(cache.find("3"), nullptr); // the most recent stays
  EXPECT_EQ(cache.evictions(), 3u);
}

TEST(LruCache, DroppedValuesAreDestroyed) {
  auto value = std::make_shared<int>(7);
  std::weak_ptr<int> watch = value;
  kiln::LruCache<std::shared_ptr<int>> cache(1);
  cache.insert("v", std::move(value));
  EXPECT_FALSE(watch.expired());
  cache.insert("w", std::make_shared<int>(8));
  EXPECT_TRUE(watch.expired());
}

} // namespace
