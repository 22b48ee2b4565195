#include "common/status.h"

#include <gtest/gtest.h>

#include "common/clock.h"

namespace fastgpu {
namespace {

Result<int> Half(int x) {
  if (x % 2) return InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(Status, ResultPropagates) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.status().ToString(), "invalid_argument: odd");
  EXPECT_EQ(HttpStatusFor(ErrorCode::kNotFound), 404);
}

TEST(Clock, FakeClockAdvancesAndFormats) {
  FakeClock c(1000);
  c.Advance(std::chrono::milliseconds(500));
  EXPECT_EQ(c.NowMillis(), 1500);
  EXPECT_EQ(FormatTimestamp(1'700'000'000'123), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(FormatTimestamp(0), "");
}

}  // namespace
}  // namespace fastgpu
