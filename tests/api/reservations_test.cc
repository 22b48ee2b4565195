// Reservation codecs: the API/store form round-trips; create requests are strict and take RFC 3339 or Unix ms.
#include "api/reservations.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace fastgpu::api {
namespace {

using nlohmann::json;

TEST(ReservationJson, RoundTripsAndShowsItsState) {
  Reservation r;
  r.id = "r-4";
  r.name = "demo";
  r.project = "ml";
  r.gpus = 8;
  r.gpu_type = "A100-80GB";
  r.start_at = 1'800'000'000'000;
  r.end_at = 1'800'003'600'000;
  r.created_at = 1'799'000'000'000;
  r.created_by = "user:admin";
  json j = ToJson(r, r.start_at + 1);
  EXPECT_EQ(j["state"], "active");
  EXPECT_EQ(j["start_at"], FormatTimestamp(r.start_at));
  auto back = ReservationFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->id, "r-4");
  EXPECT_EQ(back->gpus, 8);
  EXPECT_EQ(back->end_at, r.end_at);
  EXPECT_EQ(back->created_by, "user:admin");
  EXPECT_EQ(ReservationState(r, r.start_at - 1), "upcoming");
  EXPECT_EQ(ReservationState(r, r.end_at), "ended");
  EXPECT_FALSE(ReservationFromJson(json{{"id", "r-1"}}).ok());
}

TEST(ReservationJson, CreateRequestsAreStrict) {
  auto r = ReservationRequestFromJson(
      json{{"project", "ml"}, {"gpus", 2}, {"start_at", "2027-01-01T10:00:00Z"}, {"end_at", 1'798'804'800'000}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->start_at, 1'798'797'600'000);
  EXPECT_EQ(r->gpu_type, "");
  auto error = [](const json& j) { return ReservationRequestFromJson(j).status().message(); };
  EXPECT_NE(error(json{{"gpus", 1}, {"start_at", 1}, {"end_at", 2}}).find("'project' is required"), std::string::npos);
  EXPECT_NE(error(json{{"project", "ml"}, {"gpus", 0}, {"start_at", 1}, {"end_at", 2}}).find("at least 1"),
            std::string::npos);
  EXPECT_NE(error(json{{"project", "ml"}, {"gpus", 1.5}, {"start_at", 1}, {"end_at", 2}}).find("whole number"),
            std::string::npos);
  EXPECT_NE(error(json{{"project", "ml"}, {"gpus", 1}, {"end_at", 2}}).find("'start_at' is required"),
            std::string::npos);
  EXPECT_NE(error(json{{"project", "ml"}, {"gpus", 1}, {"start_at", "soon"}, {"end_at", 2}}).find("'start_at'"),
            std::string::npos);
  EXPECT_NE(error(json{{"project", "ml"}, {"gpus", 1}, {"start_at", 5}, {"end_at", 5}}).find("end after it starts"),
            std::string::npos);
  EXPECT_NE(error(json{{"project", "ml"}, {"gpus", 1}, {"start_at", 1}, {"end_at", 2}, {"nodes", 1}})
                .find("unknown field 'nodes'"),
            std::string::npos);
  EXPECT_NE(error(json{{"project", "ml"}, {"gpus", 1}, {"start_at", -1}, {"end_at", 2}}).find("'start_at'"),
            std::string::npos);
}

}  // namespace
}  // namespace fastgpu::api
