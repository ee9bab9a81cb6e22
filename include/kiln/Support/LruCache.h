//===- LruCache.h - A map that drops the least recently used ---*- C++ -*-===//
//
// The process-wide caches of compiled code are bounded with this: the
// compile cache's memory level (object code, by bytes; the disk level keeps
// everything) and the C++ API's compiled graphs (by count). Not
// synchronized: each owner holds its own lock.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_SUPPORT_LRUCACHE_H
#define KILN_SUPPORT_LRUCACHE_H

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <string>
#include <unordered_map>
#include <utility>

namespace kiln {

template <typename Value> class LruCache {
public:
  /// What an entry counts against the capacity (1 by default: the capacity
  /// is a number of entries).
  using CostFn = std::function<size_t(const Value &)>;

  explicit LruCache(size_t capacity, CostFn cost = nullptr)
      : capacity(capacity), costOf(std::move(cost)) {}

  /// The value stored under `key`, now the most recently used; null if none.
  Value *find(const std::string &key) {
    auto it = index.find(key);
    if (it == index.end())
      return nullptr;
    entries.splice(entries.begin(), entries, it->second);
    return &it->second->second;
  }

  /// Stores `value` under `key` as the most recently used, unless the key is
  /// present (then the stored value is kept and made the most recent; two
  /// threads that compiled the same thing share the first). Then drops the
  /// least recently used entries while the total cost exceeds the capacity
  /// -- never the entry just used, so one entry over the capacity stays.
  Value &insert(const std::string &key, Value value) {
    if (Value *present = find(key))
      return *present;
    entries.emplace_front(key, std::move(value));
    index.emplace(key, entries.begin());
    total += cost(entries.front().second);
    evict();
    return entries.front().second;
  }

  /// Changes the capacity, dropping entries beyond it.
  void setCapacity(size_t newCapacity) {
    capacity = newCapacity;
    evict();
  }
  size_t getCapacity() const { return capacity; }

  size_t size() const { return entries.size(); }
  /// The stored entries' total cost.
  size_t totalCost() const { return total; }
  /// Entries dropped to stay within the capacity, ever.
  uint64_t evictions() const { return evicted; }

private:
  size_t cost(const Value &value) const { return costOf ? costOf(value) : 1; }

  void evict() {
    while (total > capacity && entries.size() > 1) {
      auto &last = entries.back();
      total -= cost(last.second);
      index.erase(last.first);
      entries.pop_back();
      ++evicted;
    }
  }

  size_t capacity;
  CostFn costOf;
  /// The most recently used first.
  std::list<std::pair<std::string, Value>> entries;
  std::unordered_map<
      std::string, typename std::list<std::pair<std::string, Value>>::iterator>
      index;
  size_t total = 0;
  uint64_t evicted = 0;
};

} // namespace kiln

#endif // KILN_SUPPORT_LRUCACHE_H
