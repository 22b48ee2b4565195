// JSON codecs for the wire types. Decoders are strict: unknown fields and wrong types are errors.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "api/types.h"
#include "common/status.h"

namespace fastgpu::api {

// The one strict JSON reader for request bodies and stored records. Refuses text that is not JSON,
// duplicate keys in an object (naming the key: `{"project":"a","project":"b"}` must not mean whichever
// one a decoder happens to see) and nesting deeper than kMaxJsonDepth. `what` names the text in
// messages ("request body", "stored job record").
inline constexpr int kMaxJsonDepth = 64;
Result<nlohmann::json> ParseJson(std::string_view text, std::string_view what = "request body");

nlohmann::json ToJson(const JobSpec& s);
nlohmann::json ToJson(const Job& j);
nlohmann::json ToJson(const JobEvent& e);
nlohmann::json ToJson(const Gpu& g);
nlohmann::json ToJson(const Node& n);
nlohmann::json ToJson(const std::vector<JobMember>& members);  // a JSON array

// Parses a submit request body. `gpus` may be a number (2, 0.25) or a string ("0.25");
// `runtime` may be seconds or a duration string ("24h").
Result<JobSpec> JobSpecFromJson(const nlohmann::json& j);
Result<JobSpec> JobSpecFromJsonText(std::string_view text);

// Lossless decoders for records written by this program (store rows, agent reports).
Result<Job> JobFromJson(const nlohmann::json& j);
Result<Gpu> GpuFromJson(const nlohmann::json& j);
Result<Node> NodeFromJson(const nlohmann::json& j);
Result<JobEvent> JobEventFromJson(const nlohmann::json& j);
Result<std::vector<JobMember>> JobMembersFromJson(const nlohmann::json& j);
// The jobs table's `depends` column: a JSON object with the job's dependencies and its other scheduling fields
// (preemption, checkpoint signal and grace, time window, attained service), only those not at their default.
std::string EncodeJobExtras(const Job& job);
Status DecodeJobExtras(std::string_view text, Job* job);

// {"error":{"code":"not_found","message":"..."}}
std::string ErrorBody(const Status& st);

}  // namespace fastgpu::api
