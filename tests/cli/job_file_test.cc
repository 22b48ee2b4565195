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

TEST(ParseJobYaml, DependenciesAreListsOfJobIds) {
  auto spec = ParseJobYaml("command: [x]\nafter: [j-1, j-2]\nafter_ok: j-3\n", api::JobSpec{});
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->after, (std::vector<std::string>{"j-1", "j-2"}));
  EXPECT_EQ(spec->after_ok, (std::vector<std::string>{"j-3"}));
  auto bad = ParseJobYaml("command: [x]\nafter: [job-one]\n", api::JobSpec{});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("2:"), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find("dependency 'job-one' is not a job id"), std::string::npos)
      << bad.status().message();
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
  EXPECT_EQ(s.status().message().rfind("job file:2:1: unknown field 'gpu'", 0), 0u) << s.status().message();
}

TEST(ParseJobYaml, BadValuesNameTheField) {
  auto s = ParseJobYaml("gpus: lots\n");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("gpus must be"), std::string::npos) << s.status().message();
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
  EXPECT_NE(s.status().message().find("'[' above is never closed"), std::string::npos) << s.status().message();
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

// Container jobs: `image:` in a file and --image on the command line (which wins); a bad name is refused where it is.
TEST(BuildJobSpec, ImageFromTheFileOrTheFlag) {
  auto y = ParseJobYaml("command: [python, train.py]\nimage: localhost/train:1\n");
  ASSERT_TRUE(y.ok()) << y.status().message();
  EXPECT_EQ(y->image, "localhost/train:1");
  auto bad = ParseJobYaml("command: [true]\nimage: Train Image\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().rfind("job file:2:8: image 'Train Image' is not an image name", 0), 0u)
      << bad.status().message();

  SubmitFlags f;
  f.file = "job.yaml";
  f.image = "docker.io/library/python:3.11";
  auto s = BuildJobSpec(f, Files({{"job.yaml", "command: [run]\nimage: localhost/train:1\n"}}));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->image, "docker.io/library/python:3.11");
  f.image = "-v/:/host";
  s = BuildJobSpec(f, Files({{"job.yaml", "command: [run]\n"}}));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message().rfind("invalid --image: image '-v/:/host' is not an image name", 0), 0u)
      << s.status().message();
}

TEST(BuildJobSpec, ErrorsNameTheFlag) {
  SubmitFlags f;
  f.command = {"true"};
  f.gpus = "-2";
  auto s = BuildJobSpec(f, Files({}));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message().rfind("--gpus must be a number of GPUs such as 2 or 0.25", 0), 0u)
      << s.status().message();

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
  EXPECT_NE(bad.status().message().find("processes must be"), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find("per-gpu"), std::string::npos) << bad.status().message();
}

TEST(ParseJobYaml, Secrets) {
  auto s = ParseJobYaml("command: [run]\nsecrets: [WANDB_KEY, HF_TOKEN]\n");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->secrets, (std::vector<std::string>{"WANDB_KEY", "HF_TOKEN"}));
  EXPECT_EQ(ParseJobYaml("command: [run]\nsecrets: WANDB_KEY\n")->secrets, std::vector<std::string>{"WANDB_KEY"});
  auto bad = ParseJobYaml("command: [run]\nsecrets: {A: b}\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("secrets must be"), std::string::npos) << bad.status().message();
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

// Every error about a job file names the file, line and column, in words rather than the YAML library's.
std::string YamlError(std::string_view text) {
  auto s = ParseJobYaml(text, {}, "job.yaml");
  return s.ok() ? "(accepted)" : s.status().message();
}

TEST(ParseJobYaml, ErrorsNameFileLineAndColumn) {
  EXPECT_EQ(YamlError("command: [run]\ngpus: two\n"),
            "job.yaml:2:7: gpus must be a number of GPUs such as 2 or 0.25 (or TYPE:COUNT such as A100-80GB:2), "
            "not 'two'");
  EXPECT_EQ(YamlError("command: [run]\npriority: 101\n").rfind("job.yaml:2:11: priority must be between 0 and 100", 0),
            0u);
  EXPECT_EQ(YamlError("command: [run]\nruntime: forever\n").rfind("job.yaml:2:10: runtime: ", 0), 0u);
  EXPECT_EQ(YamlError("command: [run]\nmemory: lots\n").rfind("job.yaml:2:9: memory: ", 0), 0u);
  EXPECT_EQ(YamlError("command: [run]\nenv: [A]\n").rfind("job.yaml:2:6: env must be a mapping", 0), 0u);
  EXPECT_EQ(YamlError("command: [run]\nenv:\n  bad-name: 1\n").rfind("job.yaml:3:3: 'bad-name' is not a valid", 0),
            0u);
  EXPECT_EQ(YamlError("command: {a: b}\n").rfind("job.yaml:1:10: command must be a list", 0), 0u);
  EXPECT_EQ(YamlError("command: [run, [x]]\n").rfind("job.yaml:1:16: each item of command", 0), 0u);
  EXPECT_EQ(YamlError("command: [run]\nprocesses: per-core\n").rfind("job.yaml:2:12: processes must be", 0), 0u);
  EXPECT_EQ(YamlError("command: [run]\nworkdir: data\n").rfind("job.yaml:2:10: workdir 'data' is relative", 0), 0u);
  EXPECT_EQ(YamlError("command: [run]\ncolour: blue\n").rfind("job.yaml:2:1: unknown field 'colour'; known fields: ", 0),
            0u);
  EXPECT_EQ(YamlError(""), "job.yaml: the job file is empty; it needs at least command: [...]");
  EXPECT_EQ(YamlError("- a\n- b\n").rfind("job.yaml:1:1: a job file is a set of fields", 0), 0u);
  EXPECT_NE(YamlError("gpus:2\n").find("a ':' must be followed by a space"), std::string::npos);
  // The server's checks on a single field, at that field.
  EXPECT_EQ(YamlError("command: [run]\ngpus: 1.5\n"),
            "job.yaml:2:7: gpus above 1 must be a whole number (fractions are for a single GPU)");
  EXPECT_EQ(YamlError("command: [run]\nresources: {gpu: A100:2000}\n"), "job.yaml:2:18: gpus must be at most 1024");
  EXPECT_EQ(YamlError("command: [run]\nsecrets: [OK, bad-name]\n").rfind("job.yaml:2:15: secret name 'bad-name'", 0),
            0u);
  EXPECT_EQ(YamlError("command: [run, \"a\\0b\"]\n").rfind("job.yaml:1:16: command argument 2 contains a NUL", 0), 0u)
      << YamlError("command: [run, \"a\\0b\"]\n");
  EXPECT_EQ(YamlError("command: [run]\nname: " + std::string(300, 'n') + "\n"),
            "job.yaml:2:7: name is longer than 256 characters");
}

TEST(ParseJobYaml, SyntaxErrorsInPlainWords) {
  EXPECT_EQ(YamlError("name: x\n\tgpus: 2\n"), "job.yaml:2:1: a tab is used for indentation; YAML indents with spaces only");
  EXPECT_EQ(YamlError("\tname: x\n"), "job.yaml:1:1: a tab is used for indentation; YAML indents with spaces only");
  EXPECT_EQ(YamlError("command: [run]\nname: \"unclosed\n"),
            "job.yaml:2:7: the quote opened here is never closed; add the closing \"");
  EXPECT_EQ(YamlError("command: [run]\nname: 'unclosed\n"),
            "job.yaml:2:7: the quote opened here is never closed; add the closing '");
  EXPECT_EQ(YamlError("name: x\ngpus 2\ncommand: [a]\n"),
            "job.yaml:2:1: 'gpus 2' is not 'field: value'; put a ':' and a space after the field name");
  EXPECT_EQ(YamlError("env:\n  A: 1\n B: 2\n").rfind("job.yaml:3:2: this line is indented differently", 0), 0u);
  EXPECT_EQ(YamlError("command: [run]\nenv:\n  A: 1\n   B: 2\n").rfind("job.yaml:4:4: this line is indented more", 0),
            0u)
      << YamlError("command: [run]\nenv:\n  A: 1\n   B: 2\n");
  EXPECT_EQ(YamlError("command: [a, b\n").rfind("job.yaml:2:1: a '[' above is never closed with ']'", 0), 0u);
  EXPECT_EQ(YamlError("env: {A: 1\nname: x\n").rfind("job.yaml:2:5: a '{' above is never closed with '}'", 0), 0u);
  EXPECT_EQ(YamlError("name: a: b\n").rfind("job.yaml:1:8: a ':' that cannot start a value here", 0), 0u)
      << YamlError("name: a: b\n");
  EXPECT_EQ(YamlError("name: @x\n"), "job.yaml:1:7: a value cannot start with '@'; put the value in quotes");
  EXPECT_EQ(YamlError("name: \"a\\qb\"\n").rfind("job.yaml:1:", 0), 0u);
  EXPECT_NE(YamlError("name: \"a\\qb\"\n").find("backslash"), std::string::npos);
  EXPECT_EQ(YamlError("command: [run]\n---\ngpus: 2\n").rfind("job.yaml:2:1: a second YAML document starts here", 0),
            0u);
  EXPECT_TRUE(ParseJobYaml("---\ncommand: [run]\n").ok());
  // Found by fuzz/job_file_yaml_fuzz: YAML::LoadAll never ends on this input.
  EXPECT_FALSE(ParseJobYaml("!,").ok());
  // Found by fuzz/job_file_yaml_fuzz: an alias inside its own anchor nests forever.
  EXPECT_NE(YamlError("name: &n [a, *n]\nenv\n").find("an alias '*name' inside its own anchor"), std::string::npos);
  // Quotes that close, escaped quotes and apostrophes in plain text are fine.
  auto ok = ParseJobYaml("command: [\"a \\\" b\", 'it''s']\nname: don't\n");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->command, (std::vector<std::string>{"a \" b", "it's"}));
  EXPECT_EQ(ok->name, "don't");
}

TEST(ParseJobYaml, KeysGivenTwiceAreRefused) {
  EXPECT_EQ(YamlError("gpus: 1\ncommand: [run]\nname: a\n\ngpus: 2\n"),
            "job.yaml:5:1: 'gpus' is given twice (first on line 1)");
  EXPECT_EQ(YamlError("command: [run]\nenv:\n  A: 1\n  A: 2\n"), "job.yaml:4:3: 'A' is given twice in env (first on line 3)");
  EXPECT_EQ(YamlError("command: [run]\nenv: {A: 1, A: 2}\n"), "job.yaml:2:13: 'A' is given twice in env (first on line 2)");
  EXPECT_EQ(YamlError("command: [run]\nresources:\n  gpu: 1\n  gpu: 2\n"),
            "job.yaml:4:3: 'gpu' is given twice in resources (first on line 3)");
}

// dstack/SkyPilot style: resources: {gpu: TYPE:COUNT}, and gpus: TYPE:COUNT.
TEST(ParseJobYaml, ResourcesGpuSetsTypeAndCount) {
  auto s = ParseJobYaml("command: [run]\nresources: {gpu: A100:2}\n");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->gpu_type, "A100");  // passed on as written: the scheduler matches types exactly
  EXPECT_EQ(s->gpus_milli, 2000);
  s = ParseJobYaml("command: [run]\nresources:\n  gpu: A100-80GB:8\n");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->gpu_type, "A100-80GB");
  EXPECT_EQ(s->gpus_milli, 8000);
  s = ParseJobYaml("command: [run]\nresources: {gpu: 2}\n");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->gpu_type, "");
  EXPECT_EQ(s->gpus_milli, 2000);
  s = ParseJobYaml("command: [run]\nresources: {gpu: \"A100:0.5\"}\n");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->gpus_milli, 500);
  s = ParseJobYaml("command: [run]\nresources: {gpu: H100-80GB}\n");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->gpu_type, "H100-80GB");
  EXPECT_EQ(s->gpus_milli, 1000);
  s = ParseJobYaml("command: [run]\ngpus: A100-80GB:4\n");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->gpu_type, "A100-80GB");
  EXPECT_EQ(s->gpus_milli, 4000);
  // Stated twice but the same: fine.
  s = ParseJobYaml("command: [run]\ngpus: 2\ngpu_type: A100\nresources: {gpu: A100:2}\n");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->gpus_milli, 2000);
}

TEST(ParseJobYaml, ResourcesThatDisagreeOrAreUnknownAreRefused) {
  EXPECT_EQ(YamlError("command: [run]\ngpus: 4\nresources: {gpu: A100:2}\n"),
            "job.yaml:3:18: resources.gpu asks for GPU count 2 but gpus (line 2) asks for 4; give it once");
  EXPECT_EQ(YamlError("resources:\n  gpu: A100:2\ngpu_type: H100-80GB\ncommand: [run]\n"),
            "job.yaml:3:11: gpu_type asks for GPU type H100-80GB but resources.gpu (line 2) asks for A100; give it once");
  EXPECT_EQ(YamlError("command: [run]\ngpus: A100:2\ngpu_type: H100\n"),
            "job.yaml:3:11: gpu_type asks for GPU type H100 but gpus (line 2) asks for A100; give it once");
  std::string mem = YamlError("command: [run]\nresources:\n  gpu: 2\n  memory: 64GB\n");
  EXPECT_EQ(mem.rfind("job.yaml:4:3: unknown field 'resources.memory'; accepted under resources: gpu", 0), 0u) << mem;
  EXPECT_NE(mem.find("GPU memory per GPU is the top-level field memory"), std::string::npos) << mem;
  EXPECT_EQ(YamlError("command: [run]\nresources: 2\n").rfind("job.yaml:2:12: resources must be a mapping", 0), 0u);
  EXPECT_EQ(YamlError("command: [run]\nresources: {gpu: A100:80GB:2}\n").rfind(
                "job.yaml:2:18: resources.gpu 'A100:80GB:2' has more than one ':'", 0),
            0u);
  EXPECT_EQ(YamlError("command: [run]\nresources: {gpu: A100:two}\n"),
            "job.yaml:2:18: resources.gpu 'A100:two': the count after ':' must be a number of GPUs such as 2 or "
            "0.25, not 'two'");
  EXPECT_EQ(YamlError("command: [run]\ngpus: A100\n"),
            "job.yaml:2:7: gpus must be a number of GPUs such as 2 or 0.25 (or TYPE:COUNT such as A100-80GB:2), "
            "not 'A100'");
}

TEST(BuildJobSpec, GpusFlagTakesTypeAndCount) {
  SubmitFlags f;
  f.command = {"run"};
  f.gpus = "A100:2";
  auto s = BuildJobSpec(f, Files({}));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->gpu_type, "A100");
  EXPECT_EQ(s->gpus_milli, 2000);
  f.gpu_type = "A100";  // the same type twice: fine
  EXPECT_TRUE(BuildJobSpec(f, Files({})).ok());
  f.gpu_type = "H100-80GB";
  EXPECT_EQ(BuildJobSpec(f, Files({})).status().message(),
            "--gpus A100:2 asks for GPU type A100 but --gpu-type asks for H100-80GB; give the type once");
  f.gpu_type.reset();
  // The flag overrides the file's type and count.
  f.file = "job.yaml";
  f.gpus = "H100-80GB:8";
  s = BuildJobSpec(f, Files({{"job.yaml", "command: [run]\nresources: {gpu: A100:2}\n"}}));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->gpu_type, "H100-80GB");
  EXPECT_EQ(s->gpus_milli, 8000);
  // A plain count keeps the file's type.
  f.gpus = "4";
  s = BuildJobSpec(f, Files({{"job.yaml", "command: [run]\nresources: {gpu: A100:2}\n"}}));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->gpu_type, "A100");
  EXPECT_EQ(s->gpus_milli, 4000);
  // Fields of the file that do not go together: the file is named; a flag that fixes it wins.
  f.gpus.reset();
  auto mix = BuildJobSpec(f, Files({{"job.yaml", "command: [run]\ngpus: 0.5\nprocesses: per-gpu\n"}}));
  EXPECT_EQ(mix.status().message().rfind("job.yaml: one process per GPU needs whole GPUs", 0), 0u)
      << mix.status().message();
  f.gpus = "2";
  EXPECT_TRUE(BuildJobSpec(f, Files({{"job.yaml", "command: [run]\ngpus: 0.5\nprocesses: per-gpu\n"}})).ok());
  f.gpus = "4";
  // File errors carry the file's name.
  auto bad = BuildJobSpec(f, Files({{"job.yaml", "command: [run]\ngpus: 1\ngpus: 2\n"}}));
  EXPECT_EQ(bad.status().message(), "job.yaml:3:1: 'gpus' is given twice (first on line 2)");
}

TEST(BuildJobSpec, PreemptionAndTimeWindowFlags) {
  SubmitFlags f;
  f.command = {"run"};
  f.preemptible = true;
  f.checkpoint_signal = "SIGUSR2";
  f.checkpoint_grace = "90s";
  f.begin = "now+2h";
  f.deadline = "2030-01-01T00:00:00Z";
  f.now = 1'800'000'000'000;
  auto s = BuildJobSpec(f, Files({}));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->preemptible);
  EXPECT_EQ(s->checkpoint_signal, 12);
  EXPECT_EQ(s->checkpoint_grace_s, 90);
  EXPECT_EQ(s->begin_at, f.now + 2 * 3'600'000);
  EXPECT_EQ(s->deadline_at, *ParseTimestamp("2030-01-01T00:00:00Z"));
  f.begin = "+30m";
  EXPECT_EQ(BuildJobSpec(f, Files({}))->begin_at, f.now + 30 * 60'000);
  f.begin = "soon";
  EXPECT_NE(BuildJobSpec(f, Files({})).status().message().find("--begin"), std::string::npos);
}

TEST(ParseJobYaml, PreemptionAndTimeWindowFields) {
  auto s = ParseJobYaml("command: [run]\npreemptible: true\ncheckpoint_signal: USR2\ncheckpoint_grace: 5m\n"
                        "begin: 2026-12-08T10:00:00Z\ndeadline: 2026-12-09\n",
                        {}, "job.yaml");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->preemptible);
  EXPECT_EQ(s->checkpoint_signal, 12);
  EXPECT_EQ(s->checkpoint_grace_s, 300);
  EXPECT_EQ(s->deadline_at, *ParseTimestamp("2026-12-09"));
  auto rel = ParseJobYaml("command: [run]\nbegin: +2h\n", {}, "job.yaml");
  EXPECT_NE(rel.status().message().find("job.yaml:2:8"), std::string::npos) << rel.status().message();
  auto bad = ParseJobYaml("command: [run]\npreemptible: maybe\n", {}, "job.yaml");
  EXPECT_NE(bad.status().message().find("true or false"), std::string::npos) << bad.status().message();
}

}  // namespace
}  // namespace fastgpu::cli
