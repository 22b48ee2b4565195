// The multi-host lab of the fleet tests (tests/support/net_lab.h): hosts reach each other through the
// lab's switch, a cut cable stops that, and healing it restores it.
#include "support/net_lab.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

namespace fastgpu::testing {
namespace {

// In `host`'s namespace: a listening socket on its address (port chosen by the kernel).
struct Listener {
  int fd = -1;
  int port = 0;
};

Listener ListenIn(const NetLab& lab, const std::string& host) {
  Listener l;
  std::thread t([&] {
    if (!lab.EnterFromThisThread(host).ok()) return;
    l.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);  // the socket stays in this namespace
    sockaddr_in a{};
    a.sin_family = AF_INET;
    ::inet_pton(AF_INET, lab.Address(host).c_str(), &a.sin_addr);
    socklen_t len = sizeof a;
    if (::bind(l.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(l.fd, 8) != 0 ||
        ::getsockname(l.fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      return;
    }
    l.port = ntohs(a.sin_port);
  });
  t.join();
  return l;
}

// From `host`'s namespace: does a TCP connect to address:port succeed within `timeout_ms`?
bool ConnectsFrom(const NetLab& lab, const std::string& host, const std::string& address, int port, int timeout_ms) {
  bool ok = false;
  std::thread t([&] {
    if (!lab.EnterFromThisThread(host).ok()) return;
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, address.c_str(), &a.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      ok = true;
    } else if (errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int err = 0;
      socklen_t len = sizeof err;
      ok = ::poll(&p, 1, timeout_ms) == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
    }
    ::close(fd);
  });
  t.join();
  return ok;
}

TEST(NetLabTest, HostsReachEachOtherUntilTheCableIsCut) {
  if (std::string why = NetLab::Unavailable(); !why.empty()) GTEST_SKIP() << why;
  auto lab = NetLab::Create();
  ASSERT_TRUE(lab.ok()) << lab.status().ToString();
  auto a = (*lab)->AddHost("a");
  auto b = (*lab)->AddHost("b");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_NE(*a, *b);

  Listener l = ListenIn(**lab, "a");
  ASSERT_GT(l.port, 0);
  EXPECT_TRUE(ConnectsFrom(**lab, "b", *a, l.port, 5'000));

  ASSERT_TRUE((*lab)->SetLink("b", false).ok());
  EXPECT_FALSE(ConnectsFrom(**lab, "b", *a, l.port, 300));  // the SYN is dropped: no answer at all

  ASSERT_TRUE((*lab)->SetLink("b", true).ok());
  EXPECT_TRUE(ConnectsFrom(**lab, "b", *a, l.port, 5'000));
  ::close(l.fd);

  // The wrapper runs a command inside a host: it sees the host's address, not the machine's.
  std::string cmd;
  for (const auto& arg : (*lab)->Wrap("b", {"/bin/sh", "-c", "ip -4 -o addr show dev eth0 | grep -q " + *b}))
    cmd += "'" + arg + "' ";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

TEST(NetLabTest, RefusesBadHostNames) {
  if (std::string why = NetLab::Unavailable(); !why.empty()) GTEST_SKIP() << why;
  auto lab = NetLab::Create();
  ASSERT_TRUE(lab.ok()) << lab.status().ToString();
  EXPECT_FALSE((*lab)->AddHost("").ok());
  EXPECT_FALSE((*lab)->AddHost("much-too-long").ok());
  ASSERT_TRUE((*lab)->AddHost("x").ok());
  EXPECT_FALSE((*lab)->AddHost("x").ok());
}

}  // namespace
}  // namespace fastgpu::testing
