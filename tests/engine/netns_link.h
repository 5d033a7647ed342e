// NetnsLink: a network namespace made for one test, joined to this one by a
// veth pair with a /30 from 198.18.0.0/15 (the range set aside for network
// benchmarks, RFC 2544: never a real host). Traffic stays on this machine.
// cut() takes the namespace's end down, so packets vanish without a FIN or an
// RST: the silent network failure loopback cannot produce. The destructor
// deletes the namespace and with it the pair. Needs root and iproute2;
// ok() is false with the reason in why() otherwise, for a visible skip.
#ifndef TCPX_TESTS_ENGINE_NETNS_LINK_H_
#define TCPX_TESTS_ENGINE_NETNS_LINK_H_

#include <string>
#include <vector>

namespace tcpx::test {

class NetnsLink {
 public:
  NetnsLink();
  ~NetnsLink();
  NetnsLink(const NetnsLink&) = delete;
  NetnsLink& operator=(const NetnsLink&) = delete;

  bool ok() const { return ok_; }
  const std::string& why() const { return why_; }
  const std::string& ns() const { return ns_; }
  // This namespace's end and the test namespace's end.
  const std::string& host_if() const { return host_if_; }
  const std::string& host_ip() const { return host_ip_; }
  const std::string& peer_if() const { return peer_if_; }
  const std::string& peer_ip() const { return peer_ip_; }
  // Prefix that runs a command inside the namespace.
  std::vector<std::string> exec_prefix() const { return {"ip", "netns", "exec", ns_}; }
  // Takes the namespace's end of the pair down. False if `ip` failed.
  bool cut();

 private:
  bool ip(const std::vector<std::string>& args);
  bool ok_ = false;
  bool made_ = false;
  std::string why_, ns_, host_if_, host_ip_, peer_if_, peer_ip_;
};

}  // namespace tcpx::test

#endif  // TCPX_TESTS_ENGINE_NETNS_LINK_H_
