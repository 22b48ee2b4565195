// The server's exec session relay (src/server/exec.h): buffers, offsets, limits, closing and timeouts.
#include "server/exec.h"

#include <gtest/gtest.h>

#include <thread>

namespace fastgpu::server {
namespace {

ExecOpenRequest Req(const std::string& job = "j-1", const std::string& actor = "user:alice") {
  ExecOpenRequest r;
  r.job_id = job;
  r.attempt = 1;
  r.node = "n1";
  r.actor = actor;
  r.argv = {"sh", "-c", "echo hi"};
  r.stdin_open = true;
  return r;
}

agent::ExecOutput Out(const std::string& sid, int64_t off, std::string data) {
  agent::ExecOutput o;
  o.session = sid;
  o.node = "n1";
  o.stdout_offset = off;
  o.stdout_data = std::move(data);
  return o;
}

TEST(ExecSessionsTest, OutputIsRelayedByOffsetAndRetriedPushesAreNotDuplicated) {
  FakeClock clock;
  ExecSessions ex(clock);
  std::vector<std::string> notified;
  ex.SetListener([&](const std::string& k) { notified.push_back(k); });
  auto sid = ex.Open(Req());
  ASSERT_TRUE(sid.ok()) << sid.status().ToString();
  EXPECT_EQ(sid->rfind("x-", 0), 0u);
  // Nothing yet: a long-poll waits.
  auto none = ex.ReadOutput(*sid, 0, 0, false);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto ack = ex.PushOutput(Out(*sid, 0, "hello "));
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->stdout_offset, 6);
  EXPECT_FALSE(ack->closed);
  EXPECT_NE(std::find(notified.begin(), notified.end(), "exec:" + *sid), notified.end());
  // The same push again (its answer was lost) and the next bytes overlapping it.
  ASSERT_TRUE(ex.PushOutput(Out(*sid, 0, "hello ")).ok());
  ack = ex.PushOutput(Out(*sid, 3, "lo world"));
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->stdout_offset, 11);
  auto v = ex.ReadOutput(*sid, 0, 0, false);
  ASSERT_TRUE(v.ok() && v->has_value());
  EXPECT_EQ((*v)->stdout_data, "hello world");
  EXPECT_FALSE((*v)->ended);
  // The end: told once everything before it was read.
  agent::ExecOutput end = Out(*sid, 11, "!");
  end.stderr_data = "warn";
  end.exited = true;
  end.exit_code = 3;
  ASSERT_TRUE(ex.PushOutput(end).ok());
  v = ex.ReadOutput(*sid, 11, 0, false);
  ASSERT_TRUE(v.ok() && v->has_value());
  EXPECT_EQ((*v)->stdout_offset, 11);
  EXPECT_EQ((*v)->stdout_data, "!");
  EXPECT_EQ((*v)->stderr_data, "warn");
  ASSERT_TRUE((*v)->ended);
  EXPECT_EQ((*v)->exit_code, 3);
  EXPECT_EQ(ex.Live(), 0u);
  // An offset beyond what exists is refused.
  EXPECT_EQ(ex.ReadOutput(*sid, 99, 0, false).status().code(), ErrorCode::kInvalidArgument);
}

TEST(ExecSessionsTest, OutputMemoryIsBoundedAndTheRestIsTakenOnceRead) {
  FakeClock clock;
  ExecLimits lim;
  lim.output_buffer_bytes = 8;
  ExecSessions ex(clock, lim);
  auto sid = ex.Open(Req());
  ASSERT_TRUE(sid.ok());
  auto ack = ex.PushOutput(Out(*sid, 0, "0123456789abcdef"));
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->stdout_offset, 8);  // the agent keeps the rest and sends it again
  // The end is not accepted while output is held back.
  agent::ExecOutput end = Out(*sid, 8, "89abcdef");
  end.exited = true;
  end.exit_code = 0;
  ack = ex.PushOutput(end);
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->stdout_offset, 8);
  EXPECT_EQ(ex.Live(), 1u);
  // The client reads and acknowledges: room again.
  auto v = ex.ReadOutput(*sid, 0, 0, false);
  ASSERT_TRUE(v.ok() && v->has_value());
  EXPECT_EQ((*v)->stdout_data, "01234567");
  v = ex.ReadOutput(*sid, 8, 0, true);
  ASSERT_TRUE(v.ok() && v->has_value());
  EXPECT_TRUE((*v)->stdout_data.empty());
  ack = ex.PushOutput(end);
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->stdout_offset, 16);
  v = ex.ReadOutput(*sid, 8, 0, false);
  ASSERT_TRUE(v.ok() && v->has_value());
  EXPECT_EQ((*v)->stdout_data, "89abcdef");
  EXPECT_TRUE((*v)->ended);
  EXPECT_EQ((*v)->exit_code, 0);
}

TEST(ExecSessionsTest, InputResizeEofAndCloseReachTheAgent) {
  FakeClock clock;
  ExecLimits lim;
  lim.input_buffer_bytes = 4;
  ExecSessions ex(clock, lim);
  ExecOpenRequest r = Req();
  r.tty = true;
  r.rows = 24;
  r.cols = 80;
  auto sid = ex.Open(r);
  ASSERT_TRUE(sid.ok());
  // Nothing for the agent yet (the first window size came with the command).
  auto in = ex.TakeInput("n1", *sid, 0, false);
  ASSERT_TRUE(in.ok());
  EXPECT_FALSE(in->has_value());
  // Another node cannot take it.
  EXPECT_EQ(ex.TakeInput("n2", *sid, 0, false).status().code(), ErrorCode::kNotFound);
  auto have = ex.WriteInput(*sid, 0, "abcdef", false, 0, 0);
  ASSERT_TRUE(have.ok());
  EXPECT_EQ(*have, 4);  // bounded: the client sends the rest later
  in = ex.TakeInput("n1", *sid, 0, false);
  ASSERT_TRUE(in.ok() && in->has_value());
  EXPECT_EQ((*in)->offset, 0);
  EXPECT_EQ((*in)->data, "abcd");
  // Taken: room for the rest, from the client's own offset (a repeat of "cd" is skipped).
  in = ex.TakeInput("n1", *sid, 4, true);
  ASSERT_TRUE(in.ok());
  have = ex.WriteInput(*sid, 2, "cdef", true, 50, 120);
  ASSERT_TRUE(have.ok());
  EXPECT_EQ(*have, 6);
  in = ex.TakeInput("n1", *sid, 4, false);
  ASSERT_TRUE(in.ok() && in->has_value());
  EXPECT_EQ((*in)->data, "ef");
  EXPECT_TRUE((*in)->eof);
  EXPECT_EQ((*in)->rows, 50);
  EXPECT_EQ((*in)->cols, 120);
  EXPECT_FALSE((*in)->close);
  // Input after its end is refused.
  EXPECT_EQ(ex.WriteInput(*sid, 6, "x", false, 0, 0).status().code(), ErrorCode::kFailedPrecondition);
  // Nothing new now; then the client ends the session: the agent learns it at once.
  in = ex.TakeInput("n1", *sid, 6, false);
  ASSERT_TRUE(in.ok());
  EXPECT_FALSE(in->has_value());
  ASSERT_TRUE(ex.Close(*sid, "ended by user:alice").ok());
  in = ex.TakeInput("n1", *sid, 6, false);
  ASSERT_TRUE(in.ok() && in->has_value());
  EXPECT_TRUE((*in)->close);
  EXPECT_EQ((*in)->close_reason, "ended by user:alice");
  // The kill's exit ends it, with the reason.
  agent::ExecOutput end = Out(*sid, 0, "");
  end.exited = true;
  end.signal = 9;
  auto ack = ex.PushOutput(end);
  ASSERT_TRUE(ack.ok());
  EXPECT_TRUE(ack->closed);
  auto v = ex.ReadOutput(*sid, 0, 0, false);
  ASSERT_TRUE(v.ok() && v->has_value());
  EXPECT_TRUE((*v)->ended);
  EXPECT_EQ((*v)->signal, 9);
  EXPECT_EQ((*v)->error, "ended by user:alice");
}

TEST(ExecSessionsTest, InputOfASessionWithoutStdinIsRefused) {
  FakeClock clock;
  ExecSessions ex(clock);
  ExecOpenRequest r = Req();
  r.stdin_open = false;
  auto sid = ex.Open(r);
  ASSERT_TRUE(sid.ok());
  EXPECT_EQ(ex.WriteInput(*sid, 0, "x", false, 0, 0).status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(ex.WriteInput(*sid, 0, "", false, 30, 100).ok());  // a window size is fine
}

TEST(ExecSessionsTest, LimitsPerJobPerUserAndInAll) {
  FakeClock clock;
  ExecLimits lim;
  lim.per_job = 2;
  lim.per_user = 3;
  lim.total = 4;
  ExecSessions ex(clock, lim);
  ASSERT_TRUE(ex.Open(Req("j-1", "user:a")).ok());
  ASSERT_TRUE(ex.Open(Req("j-1", "user:a")).ok());
  auto third = ex.Open(Req("j-1", "user:b"));
  EXPECT_EQ(third.status().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(third.status().message().find("job j-1"), std::string::npos) << third.status().message();
  ASSERT_TRUE(ex.Open(Req("j-2", "user:a")).ok());
  auto user = ex.Open(Req("j-3", "user:a"));
  EXPECT_EQ(user.status().code(), ErrorCode::kResourceExhausted);
  ASSERT_TRUE(ex.Open(Req("j-3", "user:b")).ok());
  auto all = ex.Open(Req("j-4", "user:c"));
  EXPECT_EQ(all.status().code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(ex.Live(), 4u);
}

TEST(ExecSessionsTest, TimeoutsEndSessionsWhoseSideWentAway) {
  FakeClock clock;
  ExecLimits lim;
  ExecSessions ex(clock, lim);
  // Never taken up by its node.
  auto lost = ex.Open(Req("j-1"));
  // The client stops polling: closed, then ended when the agent does not answer either.
  auto gone_client = ex.Open(Req("j-2"));
  ASSERT_TRUE(lost.ok() && gone_client.ok());
  ASSERT_TRUE(ex.TakeInput("n1", *gone_client, 0, true).ok());
  clock.Advance(std::chrono::milliseconds(lim.start_timeout_ms));
  ASSERT_TRUE(ex.TakeInput("n1", *gone_client, 0, true).ok());  // its agent is alive
  ex.Sweep();
  auto v = ex.ReadOutput(*lost, 0, 0, false);
  ASSERT_TRUE(v.ok() && v->has_value());
  EXPECT_TRUE((*v)->ended);
  EXPECT_NE((*v)->error.find("did not start"), std::string::npos) << (*v)->error;
  clock.Advance(std::chrono::milliseconds(lim.client_silence_ms));
  ASSERT_TRUE(ex.TakeInput("n1", *gone_client, 0, true).ok());
  ex.Sweep();
  auto in = ex.TakeInput("n1", *gone_client, 0, false);
  ASSERT_TRUE(in.ok() && in->has_value());
  EXPECT_TRUE((*in)->close);
  EXPECT_NE((*in)->close_reason.find("client went away"), std::string::npos);
  // Ended sessions are forgotten after the linger time.
  clock.Advance(std::chrono::milliseconds(lim.linger_ms + lim.agent_silence_ms));
  ex.Sweep();
  ex.Sweep();
  EXPECT_EQ(ex.Info(*lost).status().code(), ErrorCode::kNotFound);
}

TEST(ExecSessionsTest, AJobThatEndsClosesItsSessionsAndWakesAWaitingAgent) {
  FakeClock clock;
  ExecSessions ex(clock);
  auto sid = ex.Open(Req("j-7"));
  auto other = ex.Open(Req("j-8"));
  ASSERT_TRUE(sid.ok() && other.ok());
  std::thread ender([&] { ex.JobEnded("j-7", "job j-7 is CANCELLED"); });
  // Blocks until the job's end closes it (the timeout is only a safety net for a broken test).
  auto in = ex.WaitInput("n1", *sid, 0, std::chrono::milliseconds(60'000));
  ender.join();
  ASSERT_TRUE(in.ok()) << in.status().ToString();
  EXPECT_TRUE(in->close);
  EXPECT_EQ(in->close_reason, "job j-7 is CANCELLED");
  auto untouched = ex.TakeInput("n1", *other, 0, false);
  ASSERT_TRUE(untouched.ok());
  EXPECT_FALSE(untouched->has_value());
}

}  // namespace
}  // namespace fastgpu::server
