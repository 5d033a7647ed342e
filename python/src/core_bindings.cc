// _core.Endpoint: the C++ Endpoint nearly one to one, with pointers as ints,
// ids as ints, errors raised as tcpx_p2p.errors exceptions. The Pythonic
// classes (tcpx_p2p/__init__.py) are written in Python on top of it.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>

#include "bindings.h"
#include "buffers.h"
#include "oob_ip.h"
#include "py_endpoint.h"
#include "status_error.h"
#include "uccl_metadata.h"

namespace py = pybind11;

namespace tcpx_py {

namespace {

using tcpx::ConnId;
using tcpx::Endpoint;
using tcpx::MrId;
using tcpx::XferId;

// Config from the environment, then the caller's overrides by field name.
tcpx::Config config_from(const py::dict& overrides) {
  tcpx::Config c;
  throw_if_error(tcpx::Config::from_env(&c));
  for (auto [k, v] : overrides) {
    std::string key = py::cast<std::string>(k);
    if (key == "channels_per_peer") c.channels_per_peer = py::cast<int>(v);
    else if (key == "sockets_per_channel") c.sockets_per_channel = py::cast<int>(v);
    else if (key == "chunk_bytes") c.chunk_bytes = py::cast<size_t>(v);
    else if (key == "eager_bytes") c.eager_bytes = py::cast<size_t>(v);
    else if (key == "connect_timeout_ms") c.connect_timeout_ms = py::cast<int>(v);
    else if (key == "peer_timeout_ms") c.peer_timeout_ms = py::cast<int>(v);
    else if (key == "transfer_timeout_ms") c.transfer_timeout_ms = py::cast<int>(v);
    else if (key == "spin_us") c.spin_us = py::cast<int>(v);
    else if (key == "max_unmatched_bytes") c.max_unmatched_bytes = py::cast<size_t>(v);
    else if (key == "max_undelivered_bytes") c.max_undelivered_bytes = py::cast<size_t>(v);
    else if (key == "max_control_backlog_bytes") c.max_control_backlog_bytes = py::cast<size_t>(v);
    else if (key == "max_handshakes") c.max_handshakes = py::cast<int>(v);
    else if (key == "auth_key") c.auth_key = py::cast<std::string>(v);
    else if (key == "plugin_path") c.plugin_path = py::cast<std::string>(v);
    else if (key == "net_dev") c.net_dev = py::cast<int>(v);
    else if (key == "listen_addr") c.listen_addr = py::cast<std::string>(v);
    else if (key == "listen_port") c.listen_port = py::cast<uint16_t>(v);
    else throw StatusError(tcpx::InvalidArgument("unknown config field '" + key + "'"));
  }
  throw_if_error(c.validate());
  return c;
}

py::tuple info_tuple(const tcpx::PeerInfo& p) {
  return py::make_tuple(p.ip, p.port, p.gpu_idx);
}

// (mr, ptr, size, fifo) tuples -> pieces of a vector read/write.
std::vector<tcpx::IoPiece> pieces_from(const py::list& list) {
  std::vector<tcpx::IoPiece> pieces;
  pieces.reserve(list.size());
  for (py::handle h : list) {
    auto t = py::cast<py::tuple>(h);
    if (t.size() != 4) throw py::value_error("a piece is (mr, ptr, size, fifo)");
    tcpx::IoPiece p;
    p.mr = py::cast<MrId>(t[0]);
    p.data = reinterpret_cast<void*>(py::cast<uintptr_t>(t[1]));
    p.size = py::cast<size_t>(t[2]);
    p.remote = fifo_from_bytes(py::cast<py::bytes>(t[3]));
    pieces.push_back(p);
  }
  return pieces;
}

bool done_or_raise(const tcpx::Status& s) {
  if (s.in_progress()) return false;  // TIMED_OUT is final: the transfer's own deadline
  throw_if_error(s);
  return true;
}

// None while the transfer runs, its byte count once done; raises its error.
py::object bytes_or_raise(const tcpx::Status& s, uint64_t bytes) {
  if (!done_or_raise(s)) return py::none();
  return py::int_(bytes);
}

}  // namespace

tcpx::FifoItem fifo_from_bytes(const py::bytes& blob) {
  std::string_view v = blob;
  if (v.size() != sizeof(tcpx::FifoItem)) {
    throw std::runtime_error("meta must be exactly 64 bytes (serialized "
                             "FifoItem), got " + std::to_string(v.size()));
  }
  tcpx::FifoItem item;
  std::memcpy(item.bytes, v.data(), sizeof(item.bytes));
  return item;
}

py::bytes fifo_to_bytes(const tcpx::FifoItem& item) {
  return py::bytes(reinterpret_cast<const char*>(item.bytes), sizeof(item.bytes));
}

void bind_core(py::module_& m) {
  m.def("buffer_address", &buffer_address, py::arg("obj"), py::arg("writable"),
        "(address, nbytes, owner) of a C-contiguous buffer");
  m.def("oob_ip", [] {
    std::string ip;
    throw_if_error(oob_ip(&ip));
    return ip;
  });
  m.def("parse_metadata", [](py::bytes blob) {
    tcpx::PeerInfo p;
    throw_if_error(decode_any_metadata(blob, &p));
    return info_tuple(p);
  }, py::arg("metadata"), "(ip, port, gpu) from either metadata layout");
  m.def("uccl_metadata", [](const std::string& ip, uint16_t port, int gpu) {
    std::string blob;
    throw_if_error(encode_uccl_metadata(tcpx::PeerInfo{ip, port, gpu}, &blob));
    return py::bytes(blob);
  }, py::arg("ip"), py::arg("port"), py::arg("gpu"));

  py::class_<PyEndpoint, std::shared_ptr<PyEndpoint>>(m, "Endpoint")
      .def(py::init([](int gpu, py::dict overrides) {
             std::shared_ptr<PyEndpoint> ep;
             throw_if_error(PyEndpoint::create(gpu, config_from(overrides), &ep));
             return ep;
           }),
           py::arg("local_gpu_idx"), py::arg("config") = py::dict())
      .def("close", &PyEndpoint::close)
      .def_property_readonly("closed", &PyEndpoint::closed)
      .def("metadata", [](PyEndpoint& self) {
        auto md = self.get([](const Endpoint& ep) { return ep.get_metadata(); });
        return py::bytes(reinterpret_cast<const char*>(md.data()), md.size());
      })
      .def("local_info", [](PyEndpoint& self) {
        return info_tuple(self.get([](const Endpoint& ep) { return ep.local_info(); }));
      })
      .def("describe_path", [](PyEndpoint& self) {
        return self.get([](const Endpoint& ep) { return ep.describe_path(); });
      })
      .def("connect", [](PyEndpoint& self, const std::string& ip, int gpu, uint16_t port) {
        ConnId c = 0;
        throw_if_error(self.call([&](Endpoint& ep) { return ep.connect(ip, gpu, port, &c); }));
        return c;
      }, py::arg("ip"), py::arg("gpu"), py::arg("port"))
      .def("accept", [](PyEndpoint& self, int timeout_ms) {
        ConnId c = 0;
        tcpx::PeerInfo p;
        throw_if_error(self.accept(timeout_ms, &c, &p));
        return py::make_tuple(c, p.ip, p.port, p.gpu_idx);
      }, py::arg("timeout_ms") = -1)
      .def("close_connection", [](PyEndpoint& self, ConnId c) {
        throw_if_error(self.call([&](Endpoint& ep) { return ep.close_connection(c); }));
      }, py::arg("conn"))
      .def("reg", [](PyEndpoint& self, uintptr_t ptr, size_t size) {
        MrId mr = 0;
        throw_if_error(self.reg(ptr, size, &mr));
        return mr;
      }, py::arg("ptr"), py::arg("size"))
      .def("dereg", [](PyEndpoint& self, MrId mr) { throw_if_error(self.dereg(mr)); },
           py::arg("mr"))
      .def("find_mr", [](PyEndpoint& self, uintptr_t ptr, size_t size) {
        MrId mr = 0;
        throw_if_error(self.call([&](Endpoint& ep) {
          return ep.find_mr(reinterpret_cast<const void*>(ptr), size, &mr);
        }));
        return mr;
      }, py::arg("ptr"), py::arg("size"))
      .def("send_async", [](PyEndpoint& self, ConnId c, MrId mr, uintptr_t ptr, size_t size) {
        XferId x = 0;
        throw_if_error(self.call([&](Endpoint& ep) {
          return ep.send_async(c, mr, reinterpret_cast<const void*>(ptr), size, &x);
        }));
        return x;
      })
      .def("recv_async", [](PyEndpoint& self, ConnId c, MrId mr, uintptr_t ptr, size_t size) {
        XferId x = 0;
        throw_if_error(self.call([&](Endpoint& ep) {
          return ep.recv_async(c, mr, reinterpret_cast<void*>(ptr), size, &x);
        }));
        return x;
      })
      .def("send", [](PyEndpoint& self, ConnId c, MrId mr, uintptr_t ptr, size_t size) {
        throw_if_error(self.post_and_wait(1, [&](Endpoint& ep, size_t, XferId* x) {
          return ep.send_async(c, mr, reinterpret_cast<const void*>(ptr), size, x);
        }));
      })
      .def("recv", [](PyEndpoint& self, ConnId c, MrId mr, uintptr_t ptr, size_t size) {
        uint64_t bytes = 0;
        throw_if_error(self.post_and_wait(1, [&](Endpoint& ep, size_t, XferId* x) {
          return ep.recv_async(c, mr, reinterpret_cast<void*>(ptr), size, x);
        }, &bytes));
        return bytes;
      }, "Receives the matching send; returns its size in bytes")
      .def("advertise", [](PyEndpoint& self, ConnId c, MrId mr, uintptr_t ptr, size_t size) {
        tcpx::FifoItem item;
        throw_if_error(self.call([&](Endpoint& ep) {
          return ep.advertise(c, mr, reinterpret_cast<const void*>(ptr), size, &item);
        }));
        return fifo_to_bytes(item);
      })
      .def("read_async", [](PyEndpoint& self, ConnId c, MrId mr, uintptr_t ptr, size_t size,
                            py::bytes fifo) {
        tcpx::FifoItem item = fifo_from_bytes(fifo);
        XferId x = 0;
        throw_if_error(self.call([&](Endpoint& ep) {
          return ep.read_async(c, mr, reinterpret_cast<void*>(ptr), size, item, &x);
        }));
        return x;
      })
      .def("write_async", [](PyEndpoint& self, ConnId c, MrId mr, uintptr_t ptr, size_t size,
                             py::bytes fifo) {
        tcpx::FifoItem item = fifo_from_bytes(fifo);
        XferId x = 0;
        throw_if_error(self.call([&](Endpoint& ep) {
          return ep.write_async(c, mr, reinterpret_cast<const void*>(ptr), size, item, &x);
        }));
        return x;
      })
      .def("readv_async", [](PyEndpoint& self, ConnId c, py::list pieces) {
        auto v = pieces_from(pieces);
        XferId x = 0;
        throw_if_error(self.call([&](Endpoint& ep) { return ep.readv_async(c, v, &x); }));
        return x;
      }, py::arg("conn"), py::arg("pieces"))
      .def("writev_async", [](PyEndpoint& self, ConnId c, py::list pieces) {
        auto v = pieces_from(pieces);
        XferId x = 0;
        throw_if_error(self.call([&](Endpoint& ep) { return ep.writev_async(c, v, &x); }));
        return x;
      }, py::arg("conn"), py::arg("pieces"))
      .def("poll", [](PyEndpoint& self, XferId x) {
        uint64_t bytes = 0;
        tcpx::Status s = self.call([&](Endpoint& ep) { return ep.poll_async(x, &bytes); });
        return bytes_or_raise(s, bytes);
      }, py::arg("xfer"), "None while in flight; once done, the bytes it moved; raises the transfer's error")
      .def("wait", [](PyEndpoint& self, XferId x, int timeout_ms) {
        uint64_t bytes = 0;
        tcpx::Status s = self.wait(x, timeout_ms, &bytes);
        return bytes_or_raise(s, bytes);
      }, py::arg("xfer"), py::arg("timeout_ms") = -1,
         "The bytes it moved once done, None on timeout (still live); raises its error")
      .def("cancel", [](PyEndpoint& self, XferId x) {
        throw_if_error(self.call([&](Endpoint& ep) { return ep.cancel(x); }));
      }, py::arg("xfer"), "Cancels the transfer where it still can be (Endpoint::cancel)")
      .def("set_timeout", [](PyEndpoint& self, XferId x, int timeout_ms) {
        throw_if_error(self.call([&](Endpoint& ep) { return ep.set_timeout(x, timeout_ms); }));
      }, py::arg("xfer"), py::arg("timeout_ms"), "Gives the transfer a deadline (Endpoint::set_timeout)")
      .def("send_notification", [](PyEndpoint& self, ConnId c, const std::string& name,
                                   const std::string& msg) {
        throw_if_error(self.call([&](Endpoint& ep) { return ep.send_notification(c, name, msg); }));
      })
      .def("notifications", [](PyEndpoint& self) {
        std::vector<tcpx::Notification> v;
        throw_if_error(self.call([&](Endpoint& ep) {
          v = ep.get_notifications();
          return tcpx::Status::Ok();
        }));
        py::list out;
        for (auto& n : v) out.append(py::make_tuple(n.conn, py::bytes(n.name), py::bytes(n.msg)));
        return out;
      });
}

}  // namespace tcpx_py
