// Job arrays in the wire types: the spec's "array" is checked when decoded, tasks keep array_parent/array_index in
// the stored extras, and an array job's tasks travel in "array_tasks".
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api/json.h"

namespace fastgpu::api {
namespace {

TEST(ArrayJson, SpecFieldIsDecodedAndChecked) {
  auto s = JobSpecFromJsonText(R"({"command": ["true"], "array": "0-99%8"})");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->array, "0-99%8");
  auto bad = JobSpecFromJsonText(R"({"command": ["true"], "array": "0-99%0"})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("at least 1"), std::string::npos) << bad.status().message();
  EXPECT_FALSE(JobSpecFromJsonText(R"({"command": ["true"], "array": 5})").ok());
}

TEST(ArrayJson, ExtrasAndJobRoundTrip) {
  Job task;
  task.id = "j-13";
  task.spec.command = {"true"};
  task.array_parent = "j-12";
  task.array_index = 7;
  Job back;
  ASSERT_TRUE(DecodeJobExtras(EncodeJobExtras(task), &back).ok());
  EXPECT_EQ(back.array_parent, "j-12");
  EXPECT_EQ(back.array_index, 7);

  Job array;
  array.id = "j-12";
  array.spec.command = {"true"};
  array.spec.array = "0-1";
  array.array_tasks = {{.index = 0, .id = "j-13", .state = JobState::kSucceeded, .exit_code = 0, .reason = "exit code 0"},
                       {.index = 1, .id = "j-14", .state = JobState::kRunning}};
  auto decoded = JobFromJson(ToJson(array));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->spec.array, "0-1");
  ASSERT_EQ(decoded->array_tasks.size(), 2u);
  EXPECT_EQ(decoded->array_tasks[0].exit_code, 0);
  EXPECT_EQ(decoded->array_tasks[1].state, JobState::kRunning);
  EXPECT_EQ(decoded->array_tasks[1].id, "j-14");
  Job empty;
  ASSERT_TRUE(DecodeJobExtras(EncodeJobExtras(array), &empty).ok());
  EXPECT_EQ(empty.spec.array, "0-1");
  EXPECT_EQ(empty.array_index, -1);
}

}  // namespace
}  // namespace fastgpu::api
