#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "sched/scheduler.h"
#include "sim/simulate_command.h"

namespace fastgpu::sim {
namespace {

class CommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("fastgpu-sim-test-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& body) {
    auto p = dir_ / name;
    std::ofstream(p) << body;
    return p.string();
  }

  int Run(const SimulateOptions& o) {
    out_.str("");
    err_.str("");
    return RunSimulateCommand(o, out_, err_, clock_);
  }

  std::filesystem::path dir_;
  std::ostringstream out_, err_;
  FakeClock clock_;
};

constexpr const char* kSmallTrace =
    "job_id,submit_time_s,num_gpus,duration_s,user,queue,status\n"
    "a,0,1,100,u,q1,s\n"
    "b,10,1,5,u,q1,s\n"
    "c,20,2,50,v,q2,s\n"
    "d,30,1,5,u,q1,s\n";

TEST_F(CommandTest, OptionErrors) {
  SimulateOptions o;
  EXPECT_EQ(Run(o), 2);
  EXPECT_NE(err_.str().find("--trace FILE is required"), std::string::npos);

  o.trace_path = Write("t.csv", kSmallTrace);
  o.cluster = "64by8";
  EXPECT_EQ(Run(o), 2);
  EXPECT_NE(err_.str().find("is not NODESxGPUSxTYPE"), std::string::npos) << err_.str();

  o.cluster = "1x2xT4";
  o.output = "yaml";
  EXPECT_EQ(Run(o), 2);
  EXPECT_NE(err_.str().find("--output 'yaml' is not one of table, json, csv"), std::string::npos);

  o.output = "table";
  o.from_s = 10;
  o.to_s = 5;
  EXPECT_EQ(Run(o), 2);
  EXPECT_NE(err_.str().find("--from 10 is after --to 5"), std::string::npos);

  o.from_s.reset();
  o.to_s.reset();
  o.compare = "fifo,,sjf";
  EXPECT_EQ(Run(o), 2);
  EXPECT_NE(err_.str().find("empty item"), std::string::npos);

  o.compare = "no-such-policy";
  EXPECT_EQ(Run(o), 2);
  EXPECT_NE(err_.str().find("policy 'no-such-policy'"), std::string::npos);
  EXPECT_TRUE(out_.str().empty());
}

TEST_F(CommandTest, TraceErrorsReachTheUser) {
  if (!sched::MakeScheduler("fifo", "best-fit").ok()) GTEST_SKIP() << "fifo policy not available";
  SimulateOptions o;
  o.trace_path = Write("bad.csv", "job_id,submit_time_s,num_gpus,duration_s,user,queue,status\n1,0,x,1,u,q,s\n");
  EXPECT_EQ(Run(o), 2);
  EXPECT_NE(err_.str().find("line 2: num_gpus 'x' is not an integer"), std::string::npos) << err_.str();
  o.trace_path = (dir_ / "missing.csv").string();
  EXPECT_EQ(Run(o), 2);
  EXPECT_NE(err_.str().find("cannot open trace file"), std::string::npos) << err_.str();
  o.trace_path = Write("t.csv", kSmallTrace);
  o.queue = "nope";
  EXPECT_EQ(Run(o), 2);
  EXPECT_NE(err_.str().find("no jobs in"), std::string::npos) << err_.str();
}

TEST(ParsePolicyListTest, Splits) {
  auto l = ParsePolicyList("fifo, sjf ,las");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(*l, (std::vector<std::string>{"fifo", "sjf", "las"}));
  EXPECT_FALSE(ParsePolicyList("").ok());
  EXPECT_FALSE(ParsePolicyList("fifo,").ok() && ParsePolicyList("fifo,")->size() == 2);
}

TEST(ParsePreemptibleTest, AllNoneAndFractions) {
  EXPECT_EQ(*ParsePreemptible("all"), 1000);
  EXPECT_EQ(*ParsePreemptible("none"), 0);
  EXPECT_EQ(*ParsePreemptible("0.5"), 500);
  EXPECT_EQ(*ParsePreemptible("0.125"), 125);
  EXPECT_EQ(*ParsePreemptible(".25"), 250);
  EXPECT_EQ(*ParsePreemptible("1"), 1000);
  EXPECT_EQ(*ParsePreemptible("0"), 0);
  for (const char* bad : {"", "1.5", "2", "-0.5", "half", "0.1234", "0.5x", "."}) {
    auto r = ParsePreemptible(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("all, none or a fraction"), std::string::npos) << r.status().message();
  }
}

TEST_F(CommandTest, PreemptibleAndByProject) {
  SimulateOptions o;
  o.trace_path = Write("t.csv", kSmallTrace);
  o.cluster = "1x2xT4";
  o.policy = "default";
  o.timing = false;
  o.progress = false;
  o.preemptible = "none";
  o.by_project = true;
  ASSERT_EQ(Run(o), 0) << err_.str();
  EXPECT_NE(out_.str().find("Preemptible: none of the jobs"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("By project:"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("q2     1", out_.str().find("By project:")), std::string::npos) << out_.str();
  o.output = "csv";
  ASSERT_EQ(Run(o), 0) << err_.str();
  EXPECT_NE(out_.str().find("policy,project,completed,avg_jct_s,avg_queue_s,max_queue_s,preemptions\n"),
            std::string::npos)
      << out_.str();
  o.output = "json";
  ASSERT_EQ(Run(o), 0) << err_.str();
  EXPECT_NE(out_.str().find("\"preemptible\": \"none\""), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("\"projects\""), std::string::npos) << out_.str();
  o.preemptible = "0.75x";
  EXPECT_EQ(Run(o), 2);
  EXPECT_NE(err_.str().find("--preemptible '0.75x'"), std::string::npos) << err_.str();
}

TEST_F(CommandTest, CompareAllIsDeterministic) {
  SimulateOptions o;
  o.trace_path = Write("t.csv", kSmallTrace);
  o.cluster = "1x2xT4";
  o.compare = "all";
  o.timing = false;
  o.progress = false;
  for (const char* fmt : {"table", "json", "csv"}) {
    o.output = fmt;
    int rc1 = Run(o);
    std::string first = out_.str();
    int rc2 = Run(o);
    if (rc1 == 2 && err_.str().find("no policy could be created") != std::string::npos) {
      GTEST_SKIP() << "no scheduling policies available yet";
    }
    ASSERT_EQ(rc1, 0) << err_.str();
    ASSERT_EQ(rc2, 0) << err_.str();
    EXPECT_EQ(first, out_.str()) << fmt;
    EXPECT_EQ(first.find("wall"), std::string::npos);
  }
  o.output = "table";
  ASSERT_EQ(Run(o), 0);
  EXPECT_NE(out_.str().find("Cluster:   1 nodes x 2 T4 = 2 GPUs"), std::string::npos) << out_.str();
  o.timing = true;
  ASSERT_EQ(Run(o), 0);
  EXPECT_NE(out_.str().find("wall s"), std::string::npos);
  EXPECT_TRUE(err_.str().find('\r') == std::string::npos);  // no progress bar when not asked
}

}  // namespace
}  // namespace fastgpu::sim
