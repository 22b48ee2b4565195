// Shared by the HTTP handler files (http.cc, http_accounts.cc, http_billing.cc). Not a public header.
#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>

#include "server/http.h"

// In a handler: on error, send it and return.
#define RETURN_IF_SEND_ERROR(res, expr)        \
  do {                                         \
    ::fastgpu::Status _st = (expr);            \
    if (!_st.ok()) return SendError(res, _st); \
  } while (0)

namespace fastgpu::server {

// One request being served: the caller and what the audit row should say.
struct HttpServer::Ctx {
  const Request& req;
  Response& res;
  auth::Principal principal;
  bool authenticated = false;
  std::string project;         // resolved for kPathProject / kPathJob routes
  std::string audit_target;    // defaults to the request path
  std::string audit_detail;    // never a secret value
  std::string audit_actor;     // defaults to principal.Actor()
  bool audited = false;        // the handler's service call wrote the audit row with its change
  int64_t audited_seq = 0;     // that row's seq
  const RouteInfo* route = nullptr;  // the route being served
};

void SendError(Response& res, const Status& st);
void SendJson(Response& res, const nlohmann::json& j, int status = 200);
std::string Param(const Request& req, const char* name);
Result<int64_t> IntParam(const Request& req, const char* name, int64_t def, int64_t lo, int64_t hi);
// Parses a JSON object body and rejects fields not in `allowed`.
Result<nlohmann::json> ObjectBody(const Request& req, std::initializer_list<const char*> allowed);
// Typed optional fields of a parsed body; errors name the field.
Result<std::optional<std::string>> OptString(const nlohmann::json& j, const char* field);
Result<std::optional<bool>> OptBool(const nlohmann::json& j, const char* field);
Result<std::optional<int64_t>> OptInt(const nlohmann::json& j, const char* field, int64_t lo, int64_t hi);
// Money given as "<field>_micro" (integer) or "<field>" (decimal dollars text); nullopt when neither.
Result<std::optional<int64_t>> OptMoney(const nlohmann::json& j, const std::string& field);
std::string Timestamp(UnixMillis ms);  // RFC 3339 UTC, "" for 0
// A node for `node list` / `node get`: api::Node plus its state ("ready", "cordoned", "draining", "drained",
// "offline"), jobs and connection (http_agent.cc).
nlohmann::json NodeJson(const NodeInfo& n);

}  // namespace fastgpu::server
