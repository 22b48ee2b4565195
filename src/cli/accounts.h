// Client verbs for accounts, security and billing (users, projects, members, tokens, service accounts,
// secrets, audit, prices, usage, bills, credits), and the pure helpers they use. Each verb returns the
// process exit code. Money travels as integer micro-USD and is formatted here, without floating point.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "cli/config.h"
#include "common/quantity.h"
#include "common/status.h"

namespace fastgpu::cli {

// ---- pure helpers --------------------------------------------------------------------------------

// 2'500'000 -> "$2.50", 417 -> "$0.000417", 1'234'500 -> "$1.2345", -1'500'000 -> "-$1.50".
std::string FormatUsd(int64_t micro);
// GPU-hours x 1000 -> "12.345" (always three decimals).
std::string FormatGpuHoursMilli(int64_t milli);
// "2.50", "$2.50", "2", "-5" (when allowed) -> micro-USD. At most 6 decimals.
Result<int64_t> ParseUsdMicro(std::string_view text, std::string_view what, bool allow_negative = false);
// "true"/"false" (also yes/no, 1/0).
Result<bool> ParseBoolFlag(std::string_view text, std::string_view what);

// One --quota-gpus item: "A100-80GB=8", "*=16", "H100-80GB=0.5"; "TYPE=none" removes the limit (nullopt).
struct QuotaGpuItem {
  std::string type;
  std::optional<MilliGpu> milli;
};
Result<QuotaGpuItem> ParseQuotaGpus(std::string_view text);

// The value of `secret set` as read from stdin: one trailing newline ("\n" or "\r\n") is stripped; an
// empty value is refused.
Result<std::string> SecretValueFromInput(std::string text);
// Reads a secret's value: from `prompt_hidden` (no echo) when stdin is a terminal, else all of `in`
// (at most 1 MiB), then SecretValueFromInput.
using PromptHiddenFn = std::function<Result<std::string>(const std::string& prompt)>;
Result<std::string> ReadSecretValue(std::istream* in, bool in_is_tty, const PromptHiddenFn& prompt_hidden,
                                    const std::string& name);

// ---- verbs ---------------------------------------------------------------------------------------

// Verifies server + token with GET /v1/whoami, then stores them in <home>/credentials.json.
int Login(Context& ctx, const std::string& home, const Credentials& creds);
int Logout(std::ostream& out, std::ostream& err, const std::string& home);
int Whoami(Context& ctx);

int UserCreate(Context& ctx, const std::string& name, bool admin, const std::optional<std::string>& display_name);
int UserList(Context& ctx);
int UserGet(Context& ctx, const std::string& name);
// PATCH with only the given fields.
int UserSet(Context& ctx, const std::string& name, std::optional<bool> admin, std::optional<bool> disabled,
            const std::optional<std::string>& display_name);

int ProjectCreate(Context& ctx, const std::string& name, const std::optional<std::string>& description,
                  const std::optional<std::string>& owner);
int ProjectList(Context& ctx);
int ProjectGet(Context& ctx, const std::string& name);
struct ProjectSetFlags {
  std::optional<std::string> description;
  std::vector<std::string> quota_gpus;          // "TYPE=N", repeatable
  std::optional<std::string> quota_gpu_hours;   // whole GPU-hours per month
  std::optional<std::string> quota_queued;      // max queued jobs
  std::optional<std::string> budget;            // USD per month
  std::optional<bool> budget_hard;              // --budget-hard / --budget-soft
  std::optional<std::string> run_as;
  std::optional<std::string> allow_root;        // "true" | "false"
};
// Quota and budget are merged client-side: the project is read, changed and sent back whole.
int ProjectSet(Context& ctx, const std::string& name, const ProjectSetFlags& flags);

int MemberAdd(Context& ctx, const std::string& project, const std::string& user, const std::string& role);
int MemberList(Context& ctx, const std::string& project);
int MemberRemove(Context& ctx, const std::string& project, const std::string& user);

int TokenCreate(Context& ctx, const std::optional<std::string>& name, const std::optional<std::string>& expires,
                const std::optional<std::string>& user);
int TokenList(Context& ctx, bool all, const std::string& user);
int TokenRevoke(Context& ctx, const std::string& id);

int ServiceAccountCreate(Context& ctx, const std::string& project, const std::string& name, const std::string& role);
int ServiceAccountList(Context& ctx, const std::string& project);
int ServiceAccountDelete(Context& ctx, const std::string& project, const std::string& id);

int SecretSet(Context& ctx, const std::string& project, const std::string& name, const std::string& value);
int SecretList(Context& ctx, const std::string& project);
int SecretDelete(Context& ctx, const std::string& project, const std::string& name);
int SecretRotateKey(Context& ctx);

int AuditList(Context& ctx, std::optional<int64_t> after, std::optional<int> limit);
// Exit 0 when the chain is intact, 1 when it is broken (the problem goes to stderr).
int AuditVerify(Context& ctx);

int PriceList(Context& ctx, bool all);
int PriceSet(Context& ctx, const std::string& gpu_type, const std::string& price,
             const std::optional<std::string>& effective);
int Usage(Context& ctx, const std::string& month, const std::string& project);
// kCsv prints the server's CSV export unchanged.
int BillShow(Context& ctx, const std::string& project, const std::string& month);
int CreditList(Context& ctx, const std::string& project);
int CreditAdd(Context& ctx, const std::string& project, const std::string& amount, const std::string& kind,
              std::optional<int> months, const std::optional<std::string>& memo);

// `job submit --dry-run`: the price per hour and the estimate; nothing is created.
int JobSubmitDryRun(Context& ctx, const SubmitFlags& flags, const ReadFileFn& read_file);

}  // namespace fastgpu::cli
