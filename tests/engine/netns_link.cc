#include "netns_link.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

extern char** environ;

namespace tcpx::test {

bool NetnsLink::ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv_s = {"ip"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  // Quiet: a failure shows as the exit status (and in why()).
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int rc = posix_spawnp(&pid, "ip", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return false;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

NetnsLink::NetnsLink() {
  if (geteuid() != 0) {
    why_ = "needs root to create a network namespace";
    return;
  }
  // Names and subnet from the pid, so concurrent test processes do not meet.
  unsigned id = static_cast<unsigned>(getpid()) % 16000;
  std::string tag = std::to_string(id);
  ns_ = "tcpxt" + tag;
  host_if_ = "tcpxh" + tag;
  peer_if_ = "tcpxp" + tag;
  unsigned base = id * 4;  // a /30 inside 198.18.0.0/15
  std::string net = "198." + std::to_string(18 + base / 65536) + "." + std::to_string(base / 256 % 256) + ".";
  host_ip_ = net + std::to_string(base % 256 + 1);
  peer_ip_ = net + std::to_string(base % 256 + 2);
  if (!ip({"netns", "add", ns_})) {
    why_ = "'ip netns add' failed (no iproute2, or no permission for namespaces here)";
    return;
  }
  made_ = true;
  ok_ = ip({"link", "add", host_if_, "type", "veth", "peer", "name", peer_if_}) &&
        ip({"link", "set", peer_if_, "netns", ns_}) &&
        ip({"addr", "add", host_ip_ + "/30", "dev", host_if_}) &&
        ip({"-n", ns_, "addr", "add", peer_ip_ + "/30", "dev", peer_if_}) &&
        ip({"link", "set", host_if_, "up"}) && ip({"-n", ns_, "link", "set", peer_if_, "up"}) &&
        ip({"-n", ns_, "link", "set", "lo", "up"});
  if (!ok_) why_ = "setting up the veth pair failed (no veth support?)";
}

NetnsLink::~NetnsLink() {
  if (!made_) return;
  ip({"link", "del", host_if_});  // gone already if the namespace took it down
  ip({"netns", "del", ns_});
}

bool NetnsLink::cut() { return ip({"-n", ns_, "link", "set", peer_if_, "down"}); }

}  // namespace tcpx::test
