// StatusError: a non-OK tcpx::Status on its way to Python. The translator
// registered here turns it into the matching tcpx_p2p.errors exception, which
// carries the status code, its name and the message.
#ifndef TCPX_PY_STATUS_ERROR_H_
#define TCPX_PY_STATUS_ERROR_H_

#include <exception>
#include <string>

#include "tcpx/status.h"

namespace tcpx_py {

class StatusError : public std::exception {
 public:
  explicit StatusError(tcpx::Status status);
  const tcpx::Status& status() const { return status_; }
  const char* what() const noexcept override { return what_.c_str(); }

 private:
  tcpx::Status status_;
  std::string what_;
};

inline void throw_if_error(const tcpx::Status& s) {
  if (!s.ok()) throw StatusError(s);
}

// Once per module: StatusError -> tcpx_p2p.errors.error_from_status(...).
void register_status_translator();

}  // namespace tcpx_py

#endif  // TCPX_PY_STATUS_ERROR_H_
