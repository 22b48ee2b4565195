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

// A relative workdir was stored literally ('.') and meant nothing on the node.
TEST(ValidateJobSpec, WorkdirMustBeAbsolute) {
  JobSpec s;
  s.command = {"true"};
  s.workdir = ".";
  auto st = ValidateJobSpec(s);
  ASSERT_EQ(st.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "workdir '.' is relative: give an absolute path on the node that runs the job");
  s.workdir = "/data/run1";
  EXPECT_TRUE(ValidateJobSpec(s).ok());
}

// Container jobs: the image name is checked at submit (a name podman would take as an option, or that it would
// refuse, never reaches a node), travels in the spec's JSON and is kept with the stored extras.
TEST(ValidateJobSpec, ImageNamesAreCheckedAndTheImageRoundTrips) {
  for (const char* good : {"python:3.11", "localhost/train:1", "docker.io/library/ubuntu:22.04", "busybox",
                           "registry.example.com:5000/team/img-a_b.c:v1.2-rc", "ghcr.io/o/n@sha256:0123abcdef",
                           "ubuntu:22.04@sha256:abcdef01"}) {
    EXPECT_TRUE(ValidateImageName(good).ok()) << good << ": " << ValidateImageName(good).message();
  }
  for (const char* bad : {"", "-v/:/host", "Not An Image", "Ubuntu", "a//b", "img:", "img:-x", "img@sha256",
                          "img@sha256:XYZ", "/abs", "img/", "a b"}) {
    Status st = ValidateImageName(bad);
    ASSERT_EQ(st.code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(st.message().find("is not an image name"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("(e.g. python:3.11"), std::string::npos) << st.message();
  }
  auto spec = JobSpecFromJsonText(R"({"command": ["true"], "image": "localhost/train:1"})");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->image, "localhost/train:1");
  auto refused = JobSpecFromJsonText(R"({"command": ["true"], "image": "--privileged"})");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("image '--privileged' is not an image name"), std::string::npos);
  auto per_gpu = JobSpecFromJsonText(R"({"command": ["true"], "image": "busybox", "processes": "per-gpu"})");
  ASSERT_FALSE(per_gpu.ok());
  EXPECT_NE(per_gpu.status().message().find("not available in a container"), std::string::npos);

  Job job;
  job.id = "j-1";
  job.spec = *spec;
  EXPECT_EQ(JobFromJson(ToJson(job))->spec.image, "localhost/train:1");
  Job stored;
  ASSERT_TRUE(DecodeJobExtras(EncodeJobExtras(job), &stored).ok());
  EXPECT_EQ(stored.spec.image, "localhost/train:1");
  job.spec.image.clear();
  EXPECT_EQ(EncodeJobExtras(job), "{}");
}

// Issue 11: duplicate keys were accepted (nlohmann keeps the last one), so two readers of one body
// could disagree about, say, the project of a job.
TEST(ParseJson, RefusesDuplicateKeysNamingTheKey) {
  auto top = ParseJson(R"({"project":"a","command":["true"],"project":"b"})");
  ASSERT_FALSE(top.ok());
  EXPECT_EQ(top.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(top.status().message().find("'project' more than once"), std::string::npos) << top.status().message();
  auto nested = ParseJson(R"({"env":{"A":"1","A":"2"}})", "stored job record");
  ASSERT_FALSE(nested.ok());
  EXPECT_EQ(nested.status().message().rfind("stored job record has the key 'A'", 0), 0u) << nested.status().message();
  // The same key in sibling or nested objects is fine; so is an array of objects with the same keys.
  auto ok = ParseJson(R"({"a":{"a":1},"b":{"a":2},"c":[{"x":1},{"x":2}]})");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ((*ok)["b"]["a"], 2);
  // Escapes are decoded before comparing: "\u0061" is "a".
  EXPECT_FALSE(ParseJson(R"({"a":1,"\u0061":2})").ok());
  // A very long duplicate key is cut in the message.
  const std::string k(10'000, 'k');
  auto long_key = ParseJson("{\"" + k + "\":1,\"" + k + "\":2}");
  ASSERT_FALSE(long_key.ok());
  EXPECT_LT(long_key.status().message().size(), 300u);
}

TEST(ParseJson, RefusesInvalidJsonAndDeepNesting) {
  EXPECT_EQ(ParseJson("{", "request body").status().message(), "request body is not valid JSON");
  EXPECT_FALSE(ParseJson("").ok());
  std::string deep(kMaxJsonDepth + 1, '[');
  deep += std::string(kMaxJsonDepth + 1, ']');
  auto d = ParseJson(deep);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("deeper than"), std::string::npos);
  std::string fine(kMaxJsonDepth, '[');
  fine += std::string(kMaxJsonDepth, ']');
  EXPECT_TRUE(ParseJson(fine).ok());
  EXPECT_TRUE(ParseJson("[1, \"x\", null, {}]").ok());
}

TEST(JobSpecFromJsonText, DuplicateKeysAreRefused) {
  auto dup = JobSpecFromJsonText(R"({"command":["true"],"project":"own","project":"other"})");
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("'project'"), std::string::npos);
  auto env = JobSpecFromJsonText(R"({"command":["true"],"env":{"X":"1","X":"2"}})");
  EXPECT_FALSE(env.ok());
  EXPECT_TRUE(JobSpecFromJsonText(R"({"command":["true"],"env":{"X":"1","Y":"2"}})").ok());
}

// Issue 11: NUL bytes (JSON "\u0000") in the name or workdir were accepted; everything that reaches exec
// is refused with a message that says which field and what to do.
TEST(JobSpecFromJsonText, NulBytesAreRefusedInEveryStringThatReachesTheJob) {
  struct Case {
    const char* body;
    const char* message;
  };
  const Case cases[] = {
      {R"({"command":["true"],"name":"a\u0000b"})", "name contains a NUL byte (\\u0000); remove it"},
      {R"({"command":["true"],"workdir":"/tmp/x\u0000/../etc"})", "workdir contains a NUL byte (\\u0000); remove it"},
      {R"({"command":["true"],"gpu_type":"A100\u0000"})", "gpu_type contains a NUL byte (\\u0000); remove it"},
      {R"({"command":["true"],"project":"own\u0000"})", "project contains a NUL byte (\\u0000); remove it"},
      {R"({"command":["echo","x\u0000y"]})", "command argument 2 contains a NUL byte (\\u0000); remove it"},
      {R"({"command":"echo x\u0000y"})", "command argument 3 contains a NUL byte (\\u0000); remove it"},
      {R"({"command":["true"],"env":{"A\u0000B":"1"}})",
       "an env variable name contains a NUL byte (\\u0000); remove it"},
      {R"({"command":["true"],"env":{"A":"1\u00002"}})", "env value of 'A' contains a NUL byte (\\u0000); remove it"},
  };
  for (const auto& c : cases) {
    auto spec = JobSpecFromJsonText(c.body);
    ASSERT_FALSE(spec.ok()) << c.body;
    EXPECT_EQ(spec.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(spec.status().message(), c.message) << c.body;
  }
}

}  // namespace
}  // namespace fastgpu::api

namespace fastgpu::api {
namespace {

// "processes": "per-node" (the default) or "per-gpu" (whole GPUs only), both ways; anything else is a 400 naming
// the choices.
TEST(JobSpecFromJsonText, ProcessesIsPerNodeOrPerGpu) {
  auto plain = JobSpecFromJsonText(R"({"command": ["run"]})");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->processes, ProcessLayout::kPerNode);
  EXPECT_EQ(ToJson(*plain)["processes"], "per-node");

  auto per_gpu = JobSpecFromJsonText(R"({"command": ["run"], "gpus": 4, "processes": "per-gpu"})");
  ASSERT_TRUE(per_gpu.ok()) << per_gpu.status().ToString();
  EXPECT_EQ(per_gpu->processes, ProcessLayout::kPerGpu);
  EXPECT_EQ(ToJson(*per_gpu)["processes"], "per-gpu");

  for (const char* body : {R"({"command": ["run"], "processes": "per-core"})",
                           R"({"command": ["run"], "processes": "PER-GPU"})"}) {
    auto bad = JobSpecFromJsonText(body);
    ASSERT_FALSE(bad.ok()) << body;
    EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(bad.status().message().find("\"per-gpu\""), std::string::npos) << bad.status().message();
  }
  auto number = JobSpecFromJsonText(R"({"command": ["run"], "processes": 4})");
  ASSERT_FALSE(number.ok());
  EXPECT_NE(number.status().message().find("'processes'"), std::string::npos) << number.status().message();
  for (const char* body : {R"({"command": ["run"], "gpus": 0.5, "processes": "per-gpu"})",
                           R"({"command": ["run"], "gpus": 0, "processes": "per-gpu"})"}) {
    auto frac = JobSpecFromJsonText(body);
    ASSERT_FALSE(frac.ok()) << body;
    EXPECT_NE(frac.status().message().find("whole GPUs"), std::string::npos) << frac.status().message();
  }

  Job job;
  job.id = "j-7";
  job.spec = *per_gpu;
  auto back = JobFromJson(ToJson(job));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->spec.processes, ProcessLayout::kPerGpu);
  json old = ToJson(job);
  old.erase("processes");  // written before the field existed
  EXPECT_EQ(JobFromJson(old)->spec.processes, ProcessLayout::kPerNode);
}

TEST(JobSpecFromJsonText, PreemptionAndTimeWindow) {
  auto s = JobSpecFromJsonText(R"({"command":["x"],"preemptible":true,"checkpoint_signal":"USR2",)"
                               R"("checkpoint_grace":"2m","begin_at":"2026-12-08T10:00:00Z","deadline_at":1800000000000})");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->preemptible);
  EXPECT_EQ(s->checkpoint_signal, 12);
  EXPECT_EQ(s->checkpoint_grace_s, 120);
  EXPECT_EQ(s->begin_at, *ParseTimestamp("2026-12-08T10:00:00Z"));
  EXPECT_EQ(s->deadline_at, 1800000000000);
  auto defaults = JobSpecFromJsonText(R"({"command":["x"]})");
  ASSERT_TRUE(defaults.ok());
  EXPECT_FALSE(defaults->preemptible);
  EXPECT_EQ(defaults->checkpoint_signal, 10);
  EXPECT_EQ(defaults->checkpoint_grace_s, 60);
  EXPECT_EQ(ToJson(*defaults)["checkpoint_signal"], "SIGUSR1");
  for (const char* bad : {R"({"command":["x"],"preemptible":"yes"})", R"({"command":["x"],"checkpoint_signal":"KILL"})",
                          R"({"command":["x"],"checkpoint_grace_s":7200})", R"({"command":["x"],"begin_at":"tomorrow"})",
                          R"({"command":["x"],"begin_at":"2026-12-09T00:00:00Z","deadline_at":"2026-12-08T00:00:00Z"})"}) {
    auto r = JobSpecFromJsonText(bad);
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << bad;
  }
  EXPECT_NE(JobSpecFromJsonText(R"({"command":["x"],"checkpoint_signal":"SIGKILL"})").status().message().find("SIGUSR1"),
            std::string::npos);
}

TEST(ErrorBody, InvalidUtf8InTheMessageIsReplacedNotThrown) {
  std::string body = ErrorBody(NotFound("job j-\xff does not exist"));
  auto j = nlohmann::json::parse(body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << body;
  EXPECT_EQ(j["error"]["code"], "not_found");
}

}  // namespace
}  // namespace fastgpu::api
