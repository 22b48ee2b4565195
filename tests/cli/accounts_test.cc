// Pure helpers of the account, security and billing verbs.
#include "cli/accounts.h"

#include <gtest/gtest.h>

#include <limits>
#include <sstream>

namespace fastgpu::cli {
namespace {

TEST(FormatUsd, TwoDecimalsAtLeastSixAtMost) {
  EXPECT_EQ(FormatUsd(2'500'000), "$2.50");
  EXPECT_EQ(FormatUsd(417), "$0.000417");
  EXPECT_EQ(FormatUsd(0), "$0.00");
  EXPECT_EQ(FormatUsd(1'234'500), "$1.2345");
  EXPECT_EQ(FormatUsd(512'000'000), "$512.00");
  EXPECT_EQ(FormatUsd(10), "$0.00001");
  EXPECT_EQ(FormatUsd(-1'500'000), "-$1.50");
  EXPECT_EQ(FormatUsd(std::numeric_limits<int64_t>::min()), "-$9223372036854.775808");
}

TEST(FormatGpuHoursMilli, AlwaysThreeDecimals) {
  EXPECT_EQ(FormatGpuHoursMilli(12'345), "12.345");
  EXPECT_EQ(FormatGpuHoursMilli(0), "0.000");
  EXPECT_EQ(FormatGpuHoursMilli(5), "0.005");
  EXPECT_EQ(FormatGpuHoursMilli(100'000), "100.000");
  EXPECT_EQ(FormatGpuHoursMilli(-1'500), "-1.500");
}

TEST(ParseUsdMicro, DecimalDollarsExactly) {
  EXPECT_EQ(*ParseUsdMicro("2.50", "--budget"), 2'500'000);
  EXPECT_EQ(*ParseUsdMicro("$2.5", "--budget"), 2'500'000);
  EXPECT_EQ(*ParseUsdMicro(" 500 ", "--budget"), 500'000'000);
  EXPECT_EQ(*ParseUsdMicro("0.000417", "x"), 417);
  EXPECT_EQ(*ParseUsdMicro("-25", "--amount", /*allow_negative=*/true), -25'000'000);
  for (const char* bad : {"", "3.", "abc", "1.2.3", "1,50", "0.0000001", "-5", "$", "1e3", "9999999999999"}) {
    auto r = ParseUsdMicro(bad, "--budget");
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("--budget"), std::string::npos) << r.status().message();
    }
  }
}

TEST(ParseBoolFlag, AcceptsTrueFalseYesNo) {
  EXPECT_TRUE(*ParseBoolFlag("true", "--admin"));
  EXPECT_TRUE(*ParseBoolFlag("YES", "--admin"));
  EXPECT_FALSE(*ParseBoolFlag("false", "--admin"));
  EXPECT_FALSE(*ParseBoolFlag("0", "--admin"));
  auto r = ParseBoolFlag("maybe", "--allow-root");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--allow-root must be true or false"), std::string::npos);
}

TEST(ParseQuotaGpus, TypeEqualsCount) {
  auto a = ParseQuotaGpus("A100-80GB=8");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->type, "A100-80GB");
  EXPECT_EQ(a->milli, 8000);
  auto star = ParseQuotaGpus("*=16");
  ASSERT_TRUE(star.ok());
  EXPECT_EQ(star->type, "*");
  EXPECT_EQ(star->milli, 16000);
  EXPECT_EQ(ParseQuotaGpus("H100-80GB=0.5")->milli, 500);
  auto none = ParseQuotaGpus("A100-80GB=none");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->milli.has_value());
}

TEST(ParseQuotaGpus, BadItemsNameTheProblem) {
  auto r = ParseQuotaGpus("A100=x");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'x' is not a number of GPUs"), std::string::npos) << r.status().message();
  r = ParseQuotaGpus("A100");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("is not TYPE=N"), std::string::npos);
  EXPECT_FALSE(ParseQuotaGpus("=8").ok());
  EXPECT_FALSE(ParseQuotaGpus("A100=-1").ok());
  EXPECT_FALSE(ParseQuotaGpus("A 100=1").ok());
}

TEST(SecretValueFromInput, StripsOneTrailingNewlineAndRefusesEmpty) {
  EXPECT_EQ(*SecretValueFromInput("s3cret\n"), "s3cret");
  EXPECT_EQ(*SecretValueFromInput("s3cret\r\n"), "s3cret");
  EXPECT_EQ(*SecretValueFromInput("s3cret"), "s3cret");
  EXPECT_EQ(*SecretValueFromInput("two\nlines\n\n"), "two\nlines\n");
  EXPECT_EQ(*SecretValueFromInput(" spaced "), " spaced ");
  EXPECT_FALSE(SecretValueFromInput("").ok());
  EXPECT_FALSE(SecretValueFromInput("\n").ok());
}

TEST(ReadSecretValue, PipeOrHiddenPrompt) {
  std::istringstream in("from-stdin\n");
  EXPECT_EQ(*ReadSecretValue(&in, /*in_is_tty=*/false, nullptr, "K"), "from-stdin");

  std::string asked;
  auto prompt = [&](const std::string& p) -> Result<std::string> {
    asked = p;
    return std::string("typed");
  };
  std::istringstream unused("ignored\n");
  EXPECT_EQ(*ReadSecretValue(&unused, /*in_is_tty=*/true, prompt, "WANDB_KEY"), "typed");
  EXPECT_NE(asked.find("WANDB_KEY"), std::string::npos);

  std::istringstream empty("");
  EXPECT_FALSE(ReadSecretValue(&empty, false, nullptr, "K").ok());
  EXPECT_FALSE(ReadSecretValue(nullptr, false, nullptr, "K").ok());
  std::istringstream big(std::string((1 << 20) + 10, 'x'));
  auto r = ReadSecretValue(&big, false, nullptr, "K");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("1 MiB"), std::string::npos);
}

}  // namespace
}  // namespace fastgpu::cli
