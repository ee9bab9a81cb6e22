//===- Emulator.h - Runs Kiln's device kernels on the host ------*- C++ -*-===//
//
// A small CUDA execution model on the CPU, so that the device kernels of
// lib/Runtime/Device/Kernels.cpp can be tested without a GPU: each thread of
// a block is a fiber (ucontext), blocks run one after another, and the NVVM
// builtins the kernels use are defined here with their PTX semantics:
//
// - `__nvvm_barrier_sync`: every live thread of the block arrives (threads
//   that have returned count as arrived, as with bar.sync after exit);
// - warp collectives (`vote.ballot`, `shfl.sync.idx/down`, `match.any`):
//   the lanes named by the mask exchange values, then all read them;
// - atomics are the host's `__atomic_*` builtins (fibers switch only at
//   barriers and collectives, so any interleaving the emulator produces is
//   one a GPU could);
// - `ex2.approx`/`lg2.approx` are exp2f/log2f (more accurate than the GPU:
//   tests compare softmax with a tolerance).
//
// Shared memory is the kernels' `SHARED` globals, which is sound because
// blocks run one at a time. Include this header, then Kernels.cpp, in one
// translation unit; `emulator::launch` runs a kernel.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_UNITTESTS_DEVICE_EMULATOR_H
#define KILN_UNITTESTS_DEVICE_EMULATOR_H

#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#define KERNEL extern "C"
#define DEVICE static inline
#define SHARED

namespace emulator {

struct Fiber {
  ucontext_t context;
  std::vector<char> stack;
  bool done = false;
};

/// A barrier among `needed` participants, by generation count.
struct Barrier {
  unsigned arrived = 0, generation = 0;
};

/// A thread's part in a warp collective. Lanes may reach different
/// collectives at once (lanes that skipped a masked one run ahead to the
/// next): a collective completes when every lane of its mask is waiting
/// with that mask, and each gets a snapshot of the values.
struct Lane {
  bool waiting = false, released = false;
  unsigned mask = 0;
  uint64_t value = 0;
  uint64_t result[32];
};

struct State {
  std::function<void()> kernel;
  std::vector<Fiber> fibers;
  ucontext_t scheduler;
  unsigned current = 0, blockDim = 0, blockIdx = 0, live = 0;
  Barrier block;
  std::vector<Lane> lanes;
  uint64_t switches = 0;
};

inline State &state() {
  static State s;
  return s;
}

/// Gives the CPU to the next fiber; a fiber waiting forever is a deadlock.
inline void yield() {
  State &s = state();
  if (++s.switches > (1ull << 32)) {
    std::fprintf(stderr, "emulator: deadlock (a barrier never completes)\n");
    std::abort();
  }
  swapcontext(&s.fibers[s.current].context, &s.scheduler);
}

/// Waits until `needed` participants have arrived at `barrier`.
inline void wait(Barrier &barrier, unsigned needed) {
  unsigned generation = barrier.generation;
  if (++barrier.arrived >= needed) {
    barrier.arrived = 0;
    ++barrier.generation;
    return;
  }
  while (barrier.generation == generation)
    yield();
}

inline void fiberMain() {
  State &s = state();
  s.kernel();
  s.fibers[s.current].done = true;
  --s.live;
  // Threads that returned count as arrived at the block barrier.
  if (s.block.arrived > 0 && s.block.arrived >= s.live) {
    s.block.arrived = 0;
    ++s.block.generation;
  }
  swapcontext(&s.fibers[s.current].context, &s.scheduler);
}

/// Runs `kernel` on a grid of `blocks` blocks of `threads` threads.
inline void launch(unsigned blocks, unsigned threads,
                   std::function<void()> kernel) {
  State &s = state();
  s.kernel = std::move(kernel);
  s.blockDim = threads;
  s.fibers.resize(threads);
  s.lanes.assign(threads, Lane());
  for (unsigned b = 0; b < blocks; ++b) {
    s.blockIdx = b;
    s.block = Barrier();
    s.live = threads;
    for (Fiber &f : s.fibers) {
      f.stack.resize(256 * 1024);
      f.done = false;
      getcontext(&f.context);
      f.context.uc_stack.ss_sp = f.stack.data();
      f.context.uc_stack.ss_size = f.stack.size();
      f.context.uc_link = nullptr;
      makecontext(&f.context, fiberMain, 0);
    }
    while (s.live > 0)
      for (s.current = 0; s.current < threads; ++s.current)
        if (!s.fibers[s.current].done)
          swapcontext(&s.scheduler, &s.fibers[s.current].context);
  }
}

/// The lane values of a warp exchange among the lanes of `mask`.
inline const uint64_t *exchange(unsigned mask, uint64_t value) {
  State &s = state();
  unsigned warp = s.current / 32;
  Lane *lanes = &s.lanes[warp * 32];
  Lane &self = s.lanes[s.current];
  self.waiting = true;
  self.mask = mask;
  self.value = value;
  bool complete = true;
  for (unsigned l = 0; l < 32; ++l)
    if (((mask >> l) & 1) && (!lanes[l].waiting || lanes[l].mask != mask))
      complete = false;
  if (complete) {
    uint64_t values[32] = {};
    for (unsigned l = 0; l < 32; ++l)
      if ((mask >> l) & 1)
        values[l] = lanes[l].value;
    for (unsigned l = 0; l < 32; ++l)
      if ((mask >> l) & 1) {
        std::copy(values, values + 32, lanes[l].result);
        lanes[l].waiting = false;
        lanes[l].released = true;
      }
  }
  while (!self.released)
    yield();
  self.released = false;
  return self.result;
}

} // namespace emulator

// The NVVM builtins Kernels.cpp uses, on the emulator.
inline unsigned __nvvm_read_ptx_sreg_tid_x() {
  return emulator::state().current;
}
inline unsigned __nvvm_read_ptx_sreg_ntid_x() {
  return emulator::state().blockDim;
}
inline unsigned __nvvm_read_ptx_sreg_ctaid_x() {
  return emulator::state().blockIdx;
}
inline void __nvvm_barrier_sync(unsigned) {
  emulator::State &s = emulator::state();
  emulator::wait(s.block, s.live);
}
inline unsigned __nvvm_vote_ballot_sync(unsigned mask, bool predicate) {
  const uint64_t *lanes = emulator::exchange(mask, predicate);
  unsigned ballot = 0;
  for (unsigned l = 0; l < 32; ++l)
    if ((mask >> l) & 1)
      ballot |= unsigned(lanes[l] != 0) << l;
  return ballot;
}
inline unsigned __nvvm_match_any_sync_i32(unsigned mask, unsigned value) {
  const uint64_t *lanes = emulator::exchange(mask, value);
  unsigned peers = 0;
  for (unsigned l = 0; l < 32; ++l)
    if (((mask >> l) & 1) && unsigned(lanes[l]) == value)
      peers |= 1u << l;
  return peers;
}
inline unsigned __nvvm_shfl_sync_idx_i32(unsigned mask, unsigned value,
                                         unsigned lane, unsigned) {
  return unsigned(emulator::exchange(mask, value)[lane & 31]);
}
inline unsigned __nvvm_shfl_sync_down_i32(unsigned mask, unsigned value,
                                          unsigned offset, unsigned clamp) {
  unsigned lane = emulator::state().current % 32;
  const uint64_t *lanes = emulator::exchange(mask, value);
  return lane + offset <= clamp ? unsigned(lanes[lane + offset]) : value;
}
inline float __nvvm_shfl_sync_down_f32(unsigned mask, float value,
                                       unsigned offset, unsigned clamp) {
  unsigned bits = __nvvm_shfl_sync_down_i32(
      mask, __builtin_bit_cast(unsigned, value), offset, clamp);
  return __builtin_bit_cast(float, bits);
}
inline float __nvvm_ex2_approx_f(float x) { return std::exp2(x); }
inline float __nvvm_lg2_approx_f(float x) { return std::log2(x); }

#endif // KILN_UNITTESTS_DEVICE_EMULATOR_H
