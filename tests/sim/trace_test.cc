#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "sim/cluster_spec.h"
#include "sim/trace.h"

namespace fastgpu::sim {
namespace {

constexpr const char* kHeader = "job_id,submit_time_s,num_gpus,duration_s,user,queue,status\n";

TEST(TraceTest, ParsesAndSortsBySubmitTime) {
  auto t = ParseTrace(std::string(kHeader) +
                          "7,20,2,100,alice,vc1,Pass\n"
                          "3,5,1,10,bob,vc2,unknown\r\n"
                          "\n"
                          "9,5,8,0,bob,vc1,Killed\n",
                      "t.csv");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->jobs.size(), 3u);
  EXPECT_EQ(t->rows_read, 3);
  EXPECT_EQ(t->jobs[0].job_id, "3");
  EXPECT_EQ(t->jobs[0].queue, "vc2");
  EXPECT_EQ(t->jobs[0].status, "unknown");  // CR stripped
  EXPECT_EQ(t->jobs[0].line, 3);
  EXPECT_EQ(t->jobs[1].job_id, "9");  // same submit time: file order kept
  EXPECT_EQ(t->jobs[1].num_gpus, 8);
  EXPECT_EQ(t->jobs[1].duration_s, 0);
  EXPECT_EQ(t->jobs[2].job_id, "7");
  EXPECT_EQ(t->jobs[2].submit_time_s, 20);
  EXPECT_EQ(t->jobs[2].user, "alice");
}

void ExpectError(const std::string& body, const std::string& message) {
  auto t = ParseTrace(std::string(kHeader) + body, "t.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(t.status().message(), message);
}

TEST(TraceTest, MalformedRowsNameLineAndColumn) {
  ExpectError("1,0,1,10,u,q,s\n2,0,x,10,u,q,s\n", "t.csv: line 3: num_gpus 'x' is not an integer");
  ExpectError("1,0,1,1.5,u,q,s\n", "t.csv: line 2: duration_s '1.5' is not an integer");
  ExpectError("1,,1,1,u,q,s\n", "t.csv: line 2: submit_time_s '' is not an integer");
  ExpectError("1,-5,1,1,u,q,s\n", "t.csv: line 2: submit_time_s -5 must be >= 0");
  ExpectError("1,0,0,1,u,q,s\n", "t.csv: line 2: num_gpus 0 must be >= 1");
  ExpectError("1,0,1,99999999999999999999,u,q,s\n", "t.csv: line 2: duration_s '99999999999999999999' is out of range");
  ExpectError("1,0,1,1,u,q\n",
              "t.csv: line 2: expected 7 comma-separated fields "
              "(job_id,submit_time_s,num_gpus,duration_s,user,queue,status), got 6");
  ExpectError(",0,1,1,u,q,s\n", "t.csv: line 2: job_id is empty");
  ExpectError("1,0,1,1,u,q,s\n1,3,1,1,u,q,s\n", "t.csv: line 3: duplicate job_id '1' (first on line 2)");
}

TEST(TraceTest, HeaderIsRequired) {
  auto t = ParseTrace("1,0,1,1,u,q,s\n", "t.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("line 1: expected the header"), std::string::npos);
  auto empty = ParseTrace("", "t.csv");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("empty trace"), std::string::npos);
}

TEST(TraceTest, FilterByWindowAndQueue) {
  std::string csv = std::string(kHeader) + "a,0,1,1,u,vc1,s\nb,10,1,1,u,vc2,s\nc,20,1,1,u,vc1,s\nd,30,1,1,u,vc1,s\n";
  TraceFilter f;
  f.from_s = 10;
  f.to_s = 20;
  auto t = ParseTrace(csv, "t.csv", f);
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->jobs.size(), 2u);
  EXPECT_EQ(t->jobs[0].job_id, "b");
  EXPECT_EQ(t->jobs[1].job_id, "c");
  EXPECT_EQ(t->rows_read, 4);
  TraceFilter q;
  q.queue = "vc1";
  auto t2 = ParseTrace(csv, "t.csv", q);
  ASSERT_TRUE(t2.ok());
  EXPECT_EQ(t2->jobs.size(), 3u);
}

TEST(TraceTest, LoadTraceMissingFile) {
  auto t = LoadTrace("/nonexistent/trace.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(t.status().message().find("/nonexistent/trace.csv"), std::string::npos);
}

TEST(TraceTest, BundledPhillyTraceLoads) {
  const char* src = std::getenv("FASTGPU_SOURCE_DIR");
  std::filesystem::path path = std::filesystem::path(src ? src : FASTGPU_TEST_SOURCE_DIR) / "data/traces/philly_2017_sep_nov.csv";
  auto t = LoadTrace(path.string());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->jobs.size(), 74167u);
  int64_t gpu_s = 0;
  int max_gpus = 0;
  for (const auto& j : t->jobs) {
    gpu_s += j.duration_s * j.num_gpus;
    max_gpus = std::max(max_gpus, j.num_gpus);
  }
  EXPECT_EQ(max_gpus, 32);
  EXPECT_EQ(gpu_s / 3600, 894968);  // README: 894,968 GPU-hours
  EXPECT_EQ(t->jobs.back().submit_time_s, 7564890);
}

TEST(ClusterSpecTest, Parses) {
  auto c = ParseClusterSpec("64x8xV100-32GB");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->nodes, 64);
  EXPECT_EQ(c->gpus_per_node, 8);
  EXPECT_EQ(c->gpu_type, "V100-32GB");
  EXPECT_EQ(c->gpu_memory_mib, 32 * 1024);
  EXPECT_EQ(c->total_gpus(), 512);
  EXPECT_EQ(c->ToSpec(), "64x8xV100-32GB");
  EXPECT_EQ(c->Describe(), "64 nodes x 8 V100-32GB = 512 GPUs");
  auto d = ParseClusterSpec("2x4xT4");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->gpu_memory_mib, 16 * 1024);
}

TEST(ClusterSpecTest, RejectsGarbage) {
  for (const char* bad : {"", "64", "64x8", "64x8x", "0x8xA100", "64x0xA100", "ax8xA100", "64x8xA 100", "64x65xA100"}) {
    auto c = ParseClusterSpec(bad);
    EXPECT_FALSE(c.ok()) << bad;
    if (!c.ok()) {
      EXPECT_NE(c.status().message().find("NODESxGPUSxTYPE"), std::string::npos) << bad;
    }
  }
}

TEST(ClusterSpecTest, EmptySnapshot) {
  auto c = ParseClusterSpec("2x3xA100-80GB");
  ASSERT_TRUE(c.ok());
  auto s = BuildEmptySnapshot(*c, 123);
  EXPECT_EQ(s.now, 123);
  ASSERT_EQ(s.nodes.size(), 2u);
  EXPECT_EQ(s.nodes[1].name, "node-001");
  ASSERT_EQ(s.nodes[1].gpus.size(), 3u);
  EXPECT_EQ(s.nodes[1].gpus[2].uuid, "SIM-001-2");
  EXPECT_EQ(s.nodes[1].gpus[2].index, 2);
  EXPECT_EQ(s.nodes[1].gpus[2].free_milli, kMilliPerGpu);
  EXPECT_EQ(s.nodes[1].gpus[2].free_memory_mib, 80 * 1024);
  EXPECT_TRUE(s.running.empty());
}

}  // namespace
}  // namespace fastgpu::sim
