// Requests for the files of jobs on remote nodes, in flight (server/file_relay.h).
#include "server/file_relay.h"

#include <gtest/gtest.h>

namespace fastgpu::server {
namespace {

agent::FilesAnswer AnswerOf(const std::string& request, const std::string& node) {
  agent::FilesAnswer a;
  a.request = request;
  a.node = node;
  a.size = 3;
  a.data = "abc";
  return a;
}

TEST(FileRelay, AnAnswerComesFromTheNodeAskedOnlyAndIsTakenOnce) {
  FakeClock clock;
  FileRelay relay(clock);
  auto r = relay.Open("gpu-b");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(relay.Take(*r).has_value());  // not answered yet
  EXPECT_EQ(relay.Answer(AnswerOf(*r, "gpu-c")).status().code(), ErrorCode::kPermissionDenied);
  auto key = relay.Answer(AnswerOf(*r, "gpu-b"));
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(*key, "files:" + *r);
  auto a = relay.Take(*r);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->data, "abc");
  EXPECT_FALSE(relay.Take(*r).has_value());
  EXPECT_EQ(relay.Answer(AnswerOf(*r, "gpu-b")).status().code(), ErrorCode::kNotFound);  // over
  EXPECT_EQ(relay.Answer(AnswerOf("f-unknown", "gpu-b")).status().code(), ErrorCode::kNotFound);
}

TEST(FileRelay, StreamsWakeTheirOwnKeyAndForgottenRequestsExpire) {
  FakeClock clock;
  FileRelay relay(clock);
  auto r = relay.Open("gpu-b", "files-stream:s1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*relay.Answer(AnswerOf(*r, "gpu-b")), "files-stream:s1");
  auto dropped = relay.Open("gpu-b");
  relay.Drop(*dropped);
  EXPECT_EQ(relay.Answer(AnswerOf(*dropped, "gpu-b")).status().code(), ErrorCode::kNotFound);
  // A waiter that went away: its request is forgotten once it is older than kExpireMs (at the next Open).
  auto old = relay.Open("gpu-b");
  clock.Advance(std::chrono::milliseconds(FileRelay::kExpireMs + 1));
  ASSERT_TRUE(relay.Open("gpu-b").ok());
  EXPECT_EQ(relay.Answer(AnswerOf(*old, "gpu-b")).status().code(), ErrorCode::kNotFound);
}

TEST(FileRelay, RequestsInFlightAreBounded) {
  FakeClock clock;
  FileRelay relay(clock);
  for (size_t i = 0; i < FileRelay::kMaxPending; ++i) ASSERT_TRUE(relay.Open("gpu-b").ok());
  EXPECT_EQ(relay.Open("gpu-b").status().code(), ErrorCode::kResourceExhausted);
}

}  // namespace
}  // namespace fastgpu::server
