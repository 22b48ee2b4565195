// Decoders of api/json.h and api/billing_json.h on hostile input (cases found by fuzz/).
#include "api/json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api/billing_json.h"

namespace fastgpu::api {
namespace {

using nlohmann::json;

// fuzz/api_json_fuzz: a float where an integer belongs was converted with a plain cast (undefined
// behaviour when out of range, silent truncation otherwise). Now it is a "malformed record" error.
TEST(RecordJson, FloatsAndOutOfRangeIntegersAreErrors) {
  json gpu = {{"uuid", "GPU-1"}, {"power_mw", 2.4e90}};
  auto g = GpuFromJson(gpu);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("power_mw"), std::string::npos) << g.status().message();
  EXPECT_FALSE(GpuFromJson({{"uuid", "GPU-1"}, {"index", 2.5}}).ok());
  EXPECT_FALSE(GpuFromJson({{"uuid", "GPU-1"}, {"index", 5'000'000'000LL}}).ok());
  EXPECT_FALSE(GpuFromJson({{"uuid", "GPU-1"}, {"allocated_milli", 18446744073709551615ULL}}).ok());
  EXPECT_TRUE(GpuFromJson({{"uuid", "GPU-1"}, {"index", 3}, {"power_mw", 250000}}).ok());

  Job job;
  job.id = "j-1";
  job.spec.command = {"run"};
  job.assigned_gpu_indices = {0, 1};
  job.exit_code = 3;
  json j = ToJson(job);
  auto back = JobFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->assigned_gpu_indices, (std::vector<int>{0, 1}));
  EXPECT_EQ(back->exit_code, 3);
  for (const char* field : {"priority", "created_at_ms", "exit_code", "pid"}) {
    json bad = j;
    bad[field] = 1e300;
    EXPECT_FALSE(JobFromJson(bad).ok()) << field;
  }
  j["assigned_gpu_indices"] = {0, 1.5};
  EXPECT_FALSE(JobFromJson(j).ok());

  EXPECT_FALSE(NodeFromJson({{"name", "n"}, {"gpu_count", -1e20}}).ok());
  EXPECT_FALSE(JobEventFromJson({{"job_id", "j-1"}, {"at_ms", 1.0}}).ok());
}

TEST(BillingJson, FloatsAreErrors) {
  EXPECT_FALSE(PriceEntryFromJson({{"gpu_type", "A100-80GB"}, {"price_per_gpu_hour_micro", 1e300}}).ok());
  EXPECT_FALSE(PriceEntryFromJson({{"gpu_type", "A100-80GB"}, {"price_per_gpu_hour_micro", 2.5e6}}).ok());
  auto p = PriceEntryFromJson({{"gpu_type", "A100-80GB"}, {"price_per_gpu_hour_micro", 2'500'000}});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->micro_per_gpu_hour, 2'500'000);
  json usage = {{"key", "j-1/1"}, {"job_id", "j-1"}, {"project", "p"}, {"milli", 250},
                {"start_ms", 1}, {"end_ms", 2},       {"attempt", 1e10}};
  EXPECT_FALSE(UsageSegmentFromJson(usage).ok());
  usage["attempt"] = 1;
  EXPECT_TRUE(UsageSegmentFromJson(usage).ok());
}

// fuzz/job_file_yaml_fuzz: a job file (or argv) with bytes that are not UTF-8 passed validation and then
// made JSON encoding throw (nlohmann type_error 316), terminating `fastgpu job submit`.
TEST(ValidateJobSpec, TextMustBeUtf8) {
  JobSpec s;
  s.command = {"python", "tr\xff" "ain.py"};
  auto st = ValidateJobSpec(s);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "command argument 2 is not valid UTF-8 text");
  s.command = {"python", "caf\xc3\xa9.py", "\xf0\x9f\x9a\x80"};  // é, rocket: fine
  EXPECT_TRUE(ValidateJobSpec(s).ok());
  for (const char* bad : {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80"}) {
    s.name = bad;  // overlong, surrogate, above U+10FFFF, truncated, stray continuation byte
    EXPECT_FALSE(ValidateJobSpec(s).ok()) << ::testing::PrintToString(std::string(bad));
  }
  s.name = "ok";
  s.env["A"] = "\xfe";
  EXPECT_FALSE(ValidateJobSpec(s).ok());
}

}  // namespace
}  // namespace fastgpu::api

namespace fastgpu::api {
namespace {

TEST(ErrorBody, InvalidUtf8InTheMessageIsReplacedNotThrown) {
  std::string body = ErrorBody(NotFound("job j-\xff does not exist"));
  auto j = nlohmann::json::parse(body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << body;
  EXPECT_EQ(j["error"]["code"], "not_found");
}

}  // namespace
}  // namespace fastgpu::api
