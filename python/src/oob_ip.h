// The address an endpoint created now would advertise (UCCL's get_oob_ip).
#ifndef TCPX_PY_OOB_IP_H_
#define TCPX_PY_OOB_IP_H_

#include <string>

#include "tcpx/status.h"

namespace tcpx_py {

// TCPX_LISTEN_ADDR when set, else the first non-loopback IPv4 address of an
// interface that is up, else 127.0.0.1: the rule tcpx::Config documents for
// listen_addr. Repeated here because the public API has no query for it
// short of creating an Endpoint (which binds a port and loads the plugin).
tcpx::Status oob_ip(std::string* out);

}  // namespace tcpx_py

#endif  // TCPX_PY_OOB_IP_H_
