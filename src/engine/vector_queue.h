// VectorQueue: a first-in first-out queue over one std::vector that keeps
// its storage when it drains.
//
// Why not std::deque: libstdc++'s deque frees a block each time its front
// leaves one and allocates one each time its back enters a new one, so a
// queue that hovers around a few entries (a connection's posted receives,
// its held sends) allocated every 10 to 64 transfers. Here a drained queue
// only resets its front index, and a queue that never drains moves its live
// entries to the start once the consumed ones are the larger part. So an
// entry may move on push_back and pop_front: hold no pointer into it.
#ifndef TCPX_ENGINE_VECTOR_QUEUE_H_
#define TCPX_ENGINE_VECTOR_QUEUE_H_

#include <cstddef>
#include <utility>
#include <vector>

namespace tcpx::engine {

template <class T>
class VectorQueue {
 public:
  using iterator = typename std::vector<T>::iterator;

  bool empty() const { return head_ == v_.size(); }
  size_t size() const { return v_.size() - head_; }
  T& front() { return v_[head_]; }
  T& operator[](size_t i) { return v_[head_ + i]; }
  void push_back(T v) { v_.push_back(std::move(v)); }
  void pop_front() {
    v_[head_] = T();  // what the entry still holds goes now, not at compaction
    if (++head_ == v_.size()) {
      clear();
    } else if (head_ >= kCompactAfter && 2 * head_ >= v_.size()) {
      v_.erase(v_.begin(), v_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  iterator begin() { return v_.begin() + static_cast<std::ptrdiff_t>(head_); }
  iterator end() { return v_.end(); }
  iterator erase(iterator it) { return v_.erase(it); }
  void clear() {
    v_.clear();
    head_ = 0;
  }

 private:
  static constexpr size_t kCompactAfter = 64;
  std::vector<T> v_;
  size_t head_ = 0;  // v_[0, head_) are consumed
};

}  // namespace tcpx::engine

#endif  // TCPX_ENGINE_VECTOR_QUEUE_H_
