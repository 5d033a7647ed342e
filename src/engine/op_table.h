// OpTable: the protocol's live Ops by wire id, with no allocation per op in
// steady state (slots are reused). An id carries its slot and the slot's
// generation, so a stale or forged id from the peer finds nothing.
#ifndef TCPX_ENGINE_OP_TABLE_H_
#define TCPX_ENGINE_OP_TABLE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/op.h"

namespace tcpx::engine {

class OpTable {
 public:
  // A fresh Op (every field at its default) with a new, never-zero id.
  Op* create() {
    uint32_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
    } else {
      slot = static_cast<uint32_t>(slots_.size());
      slots_.push_back(std::make_unique<Op>());
      gens_.push_back(0);
    }
    Op* op = slots_[slot].get();
    *op = Op{};
    op->id = (static_cast<uint64_t>(++gens_[slot]) << 32) | slot;
    return op;
  }

  // The live op with this id, or nullptr.
  Op* find(uint64_t id) const {
    uint64_t slot = id & 0xffffffffu;
    if (id == 0 || slot >= slots_.size()) return nullptr;
    Op* op = slots_[slot].get();
    return op->id == id ? op : nullptr;
  }

  // Ends op's life; its id is never valid again.
  void destroy(Op* op) {
    auto slot = static_cast<uint32_t>(op->id & 0xffffffffu);
    op->id = 0;
    free_.push_back(slot);
  }

  size_t live_count() const { return slots_.size() - free_.size(); }

  // Every live op (collected first: f may destroy them).
  std::vector<Op*> live() const {
    std::vector<Op*> out;
    for (const auto& op : slots_)
      if (op->id != 0) out.push_back(op.get());
    return out;
  }

 private:
  std::vector<std::unique_ptr<Op>> slots_;  // unique_ptr: Op* stays valid as slots_ grows
  std::vector<uint32_t> gens_;
  std::vector<uint32_t> free_;
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_OP_TABLE_H_
