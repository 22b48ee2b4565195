#include "auth/audit.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "common/crypto.h"
#include "common/file_util.h"

namespace fastgpu::auth {

namespace {

AuditVerifyReport Bad(AuditVerifyReport r, int64_t seq, std::string problem) {
  r.ok = false;
  r.first_bad_seq = seq;
  r.problem = std::move(problem);
  return r;
}

std::string Range(int64_t from, int64_t to) {
  return from == to ? "row " + std::to_string(from) + " is"
                    : "rows " + std::to_string(from) + "-" + std::to_string(to) + " are";
}

}  // namespace

AuditVerifyReport VerifyAuditChain(const std::vector<api::AuditRecord>& rows, int64_t expected_last_seq,
                                   const store::AuditChainKey* key) {
  AuditVerifyReport report;
  report.rows = static_cast<int64_t>(rows.size());
  const api::AuditRecord* prev = nullptr;
  for (const auto& r : rows) {
    const int64_t want = prev ? prev->seq + 1 : 1;
    if (r.seq != want) {
      if (!prev && r.seq > 1)
        return Bad(report, 1, Range(1, r.seq - 1) + " missing: the log was truncated at its head (first row is " +
                                  std::to_string(r.seq) + ")");
      if (r.seq > want)
        return Bad(report, want, Range(want, r.seq - 1) + " missing (seq gap: " + std::to_string(want - 1) +
                                     " is followed by " + std::to_string(r.seq) + ")");
      return Bad(report, r.seq, "row " + std::to_string(r.seq) + " is out of order or duplicated (expected seq " +
                                    std::to_string(want) + ")");
    }
    if (!ConstantTimeEquals(store::AuditRowHash(r, key), r.hash)) {
      return Bad(report, r.seq,
                 "row " + std::to_string(r.seq) + " was modified (hash mismatch" +
                     (key && r.seq >= key->keyed_from ? ": not signed with this server's audit key" : "") + ")");
    }
    const std::string& link = prev ? prev->hash : std::string();
    if (r.prev_hash != link) {
      return Bad(report, r.seq,
                 prev ? "row " + std::to_string(r.seq) + " does not link to row " + std::to_string(prev->seq) +
                            " (prev_hash mismatch: a row was deleted or replaced)"
                      : "row 1 has a prev_hash, so rows before it were deleted (log truncated at its head)");
    }
    prev = &r;
  }
  const int64_t last = prev ? prev->seq : 0;
  if (expected_last_seq > 0 && last < expected_last_seq) {
    return Bad(report, last + 1,
               Range(last + 1, expected_last_seq) + " missing: the newest rows were deleted (the log ends at " +
                   std::to_string(last) + ", the server wrote up to " + std::to_string(expected_last_seq) + ")");
  }
  return report;
}

namespace {

Result<std::string> ParseKeyHex(std::string_view hex, const std::string& where) {
  auto key = HexDecode(hex);
  if (!key.ok() || key->size() != 32)
    return InvalidArgument("audit key in " + where + " must be 64 hex characters (32 random bytes)");
  return std::move(key).value();
}

Result<int64_t> ParseSeq(std::string_view text, const std::string& where) {
  int64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9' || n > (int64_t{1} << 50)) return InvalidArgument("bad first keyed row in " + where);
    n = n * 10 + (c - '0');
  }
  if (text.empty() || n < 1) return InvalidArgument("bad first keyed row in " + where + " (must be >= 1)");
  return n;
}

std::string_view TrimLine(std::string_view v) {
  while (!v.empty() && (v.back() == '\r' || v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

}  // namespace

Status KeyAuditChain(store::Store& store, const std::string& path, const std::string& env_value) {
  if (!env_value.empty()) {
    std::string_view v = TrimLine(env_value);
    size_t at = v.find('@');
    ASSIGN_OR_RETURN(std::string key, ParseKeyHex(v.substr(0, at), "FASTGPU_AUDIT_KEY"));
    int64_t from = 1;
    if (at != std::string_view::npos) {
      ASSIGN_OR_RETURN(from, ParseSeq(v.substr(at + 1), "FASTGPU_AUDIT_KEY"));
    }
    return store.SetAuditKey(key, from).status();
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) return Internal("cannot read audit key file " + path + ": " + std::strerror(errno));
    ASSIGN_OR_RETURN(std::string key, RandomBytes(32));
    ASSIGN_OR_RETURN(int64_t from, store.SetAuditKey(key, 0));
    return WriteFileAtomic(path, HexEncode(key) + "\nkeyed_from=" + std::to_string(from) + "\n", 0600, /*sync=*/true);
  }
  if (!S_ISREG(st.st_mode)) return FailedPrecondition("audit key file " + path + " is not a regular file");
  if ((st.st_mode & 077) != 0) {
    return FailedPrecondition("audit key file " + path +
                              " must not be readable or writable by group or others; run: chmod 600 " + path);
  }
  auto text = ReadFileToString(path, 4096);
  if (!text) return Internal("cannot read audit key file " + path + ": " + std::strerror(errno));
  std::string key;
  int64_t from = 0;
  std::string_view rest = *text;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = TrimLine(rest.substr(0, nl));
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (line.empty()) continue;
    if (line.rfind("keyed_from=", 0) == 0) {
      ASSIGN_OR_RETURN(from, ParseSeq(line.substr(11), path));
    } else {
      ASSIGN_OR_RETURN(key, ParseKeyHex(line, path));
    }
  }
  if (key.empty() || from == 0)
    return InvalidArgument("audit key file " + path + " must hold the key (64 hex) and a keyed_from=<row> line");
  return store.SetAuditKey(key, from).status();
}

}  // namespace fastgpu::auth
