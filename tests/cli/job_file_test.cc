#include "cli/job_file.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "api/json.h"

namespace fastgpu::cli {
namespace {

ReadFileFn Files(std::map<std::string, std::string> files) {
  return [files = std::move(files)](const std::string& p) -> std::optional<std::string> {
    auto it = files.find(p);
    if (it == files.end()) return std::nullopt;
    return it->second;
  };
}

TEST(ParseEnvAssignment, SplitsAtFirstEquals) {
  auto kv = ParseEnvAssignment("A=b=c");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->first, "A");
  EXPECT_EQ(kv->second, "b=c");
  EXPECT_EQ(ParseEnvAssignment("EMPTY=")->second, "");
  EXPECT_FALSE(ParseEnvAssignment("NOEQUALS").ok());
  EXPECT_FALSE(ParseEnvAssignment("=x").ok());
  EXPECT_FALSE(ParseEnvAssignment("1BAD=x").ok());
  EXPECT_FALSE(ParseEnvAssignment("BAD-NAME=x").ok());
}

TEST(ParseJobYaml, ReadsEveryField) {
  auto s = ParseJobYaml(R"(
name: train
command: [python, train.py, --epochs, "90"]
gpus: 0.25
gpu_type: A100-80GB
memory: 16GiB
runtime: 24h
priority: 70
env: {BATCH: "256", EMPTY: }
workdir: /data
project: vision
max_retries: 2
)");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->name, "train");
  EXPECT_EQ(s->command, (std::vector<std::string>{"python", "train.py", "--epochs", "90"}));
  EXPECT_EQ(s->gpus_milli, 250);
  EXPECT_EQ(s->gpu_type, "A100-80GB");
  EXPECT_EQ(s->memory_mib, 16 * 1024);
  EXPECT_EQ(s->runtime_limit_s, 24 * 3600);
  EXPECT_EQ(s->priority, 70);
  EXPECT_EQ(s->env.at("BATCH"), "256");
  EXPECT_EQ(s->env.at("EMPTY"), "");
  EXPECT_EQ(s->workdir, "/data");
  EXPECT_EQ(s->project, "vision");
  EXPECT_EQ(s->max_retries, 2);
}

TEST(ParseJobYaml, ShellStringCommand) {
  auto s = ParseJobYaml("command: echo hi > out.txt\n");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->command, (std::vector<std::string>{"sh", "-c", "echo hi > out.txt"}));
}

TEST(ParseJobYaml, UnknownKeyIsNamed) {
  auto s = ParseJobYaml("command: [true]\ngpu: 2\n");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("unknown field 'gpu'"), std::string::npos) << s.status().message();
  EXPECT_NE(s.status().message().find("line 2"), std::string::npos) << s.status().message();
}

TEST(ParseJobYaml, BadValuesNameTheField) {
  auto s = ParseJobYaml("gpus: lots\n");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("'gpus'"), std::string::npos) << s.status().message();
  s = ParseJobYaml("priority: 101\n");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("priority"), std::string::npos);
  s = ParseJobYaml("env: [A, B]\n");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("env"), std::string::npos);
  s = ParseJobYaml("command: {a: b}\n");
  EXPECT_FALSE(s.ok());
}

TEST(ParseJobYaml, SyntaxErrorsAndNonMappings) {
  auto s = ParseJobYaml("name: [unclosed\n");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("not valid YAML"), std::string::npos);
  EXPECT_FALSE(ParseJobYaml("").ok());
  EXPECT_FALSE(ParseJobYaml("- a\n- b\n").ok());
}

TEST(BuildJobSpec, FlagsOverrideTheFile) {
  SubmitFlags f;
  f.file = "job.yaml";
  f.gpus = "2";
  f.priority = "90";
  f.env = {"B=flag", "C=3"};
  auto s = BuildJobSpec(f, Files({{"job.yaml", "name: n\ncommand: [run]\ngpus: 1\npriority: 10\nenv: {A: '1', B: file}\n"}}));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->name, "n");
  EXPECT_EQ(s->command, std::vector<std::string>{"run"});
  EXPECT_EQ(s->gpus_milli, 2000);
  EXPECT_EQ(s->priority, 90);
  EXPECT_EQ(s->env, (std::map<std::string, std::string>{{"A", "1"}, {"B", "flag"}, {"C", "3"}}));

  f.command = {"other", "arg"};
  s = BuildJobSpec(f, Files({{"job.yaml", "command: [run]\n"}}));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->command, (std::vector<std::string>{"other", "arg"}));
}

TEST(BuildJobSpec, ErrorsNameTheFlag) {
  SubmitFlags f;
  f.command = {"true"};
  f.gpus = "-2";
  auto s = BuildJobSpec(f, Files({}));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message().rfind("invalid --gpus: ", 0), 0u) << s.status().message();

  f.gpus.reset();
  f.runtime = "forever";
  EXPECT_NE(BuildJobSpec(f, Files({})).status().message().find("--runtime"), std::string::npos);
  f.runtime.reset();
  f.priority = "high";
  EXPECT_NE(BuildJobSpec(f, Files({})).status().message().find("--priority"), std::string::npos);
  f.priority.reset();
  f.env = {"NOPE"};
  EXPECT_NE(BuildJobSpec(f, Files({})).status().message().find("--env"), std::string::npos);
  f.env.clear();
  f.file = "missing.yaml";
  EXPECT_NE(BuildJobSpec(f, Files({})).status().message().find("missing.yaml"), std::string::npos);
}

TEST(BuildJobSpec, CommandIsRequired) {
  SubmitFlags f;
  auto s = BuildJobSpec(f, Files({}));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("--"), std::string::npos);
}

TEST(JobSpecRequestBody, ServerDecoderAcceptsIt) {
  SubmitFlags f;
  f.gpus = "0.25";
  f.runtime = "1h30m";
  f.memory = "512MiB";
  f.env = {"K=V"};
  f.command = {"python", "x.py"};
  auto s = BuildJobSpec(f, Files({}));
  ASSERT_TRUE(s.ok());
  std::string body = JobSpecRequestBody(*s);
  auto j = nlohmann::json::parse(body);
  EXPECT_EQ(j["gpus"], "0.25");
  EXPECT_FALSE(j.contains("gpus_milli"));
  auto back = api::JobSpecFromJsonText(body);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->gpus_milli, 250);
  EXPECT_EQ(back->runtime_limit_s, 5400);
  EXPECT_EQ(back->memory_mib, 512);
  EXPECT_EQ(back->env.at("K"), "V");
  EXPECT_EQ(back->command, s->command);
}

// One process per GPU: `processes: per-gpu` in a job file or --process-per-gpu; whole GPUs only; the request
// body carries it to the server.
TEST(BuildJobSpec, ProcessPerGpu) {
  SubmitFlags f;
  f.command = {"python", "train.py"};
  auto plain = BuildJobSpec(f, Files({}));
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->processes, api::ProcessLayout::kPerNode);

  f.gpus = "4";
  f.process_per_gpu = true;
  auto s = BuildJobSpec(f, Files({}));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->processes, api::ProcessLayout::kPerGpu);
  auto body = nlohmann::json::parse(JobSpecRequestBody(*s));
  EXPECT_EQ(body["processes"], "per-gpu");
  auto back = api::JobSpecFromJsonText(body.dump());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->processes, api::ProcessLayout::kPerGpu);

  f.gpus = "0.5";
  auto frac = BuildJobSpec(f, Files({}));
  ASSERT_FALSE(frac.ok());
  EXPECT_NE(frac.status().message().find("whole GPUs"), std::string::npos) << frac.status().message();

  SubmitFlags file;
  file.file = "job.yaml";
  auto y = BuildJobSpec(file, Files({{"job.yaml", "command: [run]\ngpus: 2\nprocesses: per-gpu\n"}}));
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(y->processes, api::ProcessLayout::kPerGpu);
  EXPECT_EQ(ParseJobYaml("command: [run]\nprocesses: per-node\n")->processes, api::ProcessLayout::kPerNode);
  auto bad = ParseJobYaml("command: [run]\nprocesses: per-core\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'processes'"), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find("per-gpu"), std::string::npos) << bad.status().message();
}

TEST(ParseJobYaml, Secrets) {
  auto s = ParseJobYaml("command: [run]\nsecrets: [WANDB_KEY, HF_TOKEN]\n");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->secrets, (std::vector<std::string>{"WANDB_KEY", "HF_TOKEN"}));
  EXPECT_EQ(ParseJobYaml("command: [run]\nsecrets: WANDB_KEY\n")->secrets, std::vector<std::string>{"WANDB_KEY"});
  auto bad = ParseJobYaml("command: [run]\nsecrets: {A: b}\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'secrets'"), std::string::npos) << bad.status().message();
}

TEST(BuildJobSpec, SecretFlagsAddToTheFileAndAreValidated) {
  SubmitFlags f;
  f.file = "job.yaml";
  f.secrets = {"HF_TOKEN", "WANDB_KEY"};
  auto s = BuildJobSpec(f, Files({{"job.yaml", "command: [run]\nsecrets: [WANDB_KEY]\n"}}));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->secrets, (std::vector<std::string>{"WANDB_KEY", "HF_TOKEN"}));
  auto j = nlohmann::json::parse(JobSpecRequestBody(*s));
  EXPECT_EQ(j["secrets"], (nlohmann::json{"WANDB_KEY", "HF_TOKEN"}));

  f.secrets = {"lower-case"};
  auto bad = BuildJobSpec(f, Files({{"job.yaml", "command: [run]\n"}}));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("lower-case"), std::string::npos);
}

// Found by fuzz/job_file_yaml_fuzz: bytes that are not UTF-8 made JobSpecRequestBody throw (abort).
TEST(BuildJobSpec, TextThatIsNotUtf8IsAnError) {
  SubmitFlags f;
  f.file = "job.yaml";
  auto s = BuildJobSpec(f, Files({{"job.yaml", "command:\n  - torchrun\n  - tra\xff\xff\n"}}));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("UTF-8"), std::string::npos) << s.status().message();
  f.file.reset();
  f.command = {"python", "caf\xe9.py"};  // Latin-1
  EXPECT_FALSE(BuildJobSpec(f, Files({})).ok());
}

}  // namespace
}  // namespace fastgpu::cli
