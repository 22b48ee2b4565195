// libpq, loaded with dlopen when a PostgreSQL store is opened: the fastgpu binary does not link it, so
// commands that never touch PostgreSQL (every CLI call, `fastgpu up` on SQLite) do not pay for loading it
// and its dependencies, and the binary runs where libpq5 is not installed.
#pragma once

#include <libpq-fe.h>

#include <memory>

#include "common/status.h"

namespace fastgpu::store::pg {

// The libpq functions the store calls. Loaded once per store; the library stays loaded while any
// Libpq object refers to it.
struct Libpq {
  Libpq() = default;
  Libpq(const Libpq&) = delete;
  Libpq& operator=(const Libpq&) = delete;
  ~Libpq();

  void* handle = nullptr;
  decltype(&::PQconnectdbParams) connectdbParams = nullptr;
  decltype(&::PQstatus) status = nullptr;
  decltype(&::PQerrorMessage) errorMessage = nullptr;
  decltype(&::PQfinish) finish = nullptr;
  decltype(&::PQreset) reset = nullptr;
  decltype(&::PQexec) exec = nullptr;
  decltype(&::PQprepare) prepare = nullptr;
  decltype(&::PQexecPrepared) execPrepared = nullptr;
  decltype(&::PQexecParams) execParams = nullptr;
  decltype(&::PQresultStatus) resultStatus = nullptr;
  decltype(&::PQresultErrorMessage) resultErrorMessage = nullptr;
  decltype(&::PQresultErrorField) resultErrorField = nullptr;
  decltype(&::PQclear) clear = nullptr;
  decltype(&::PQntuples) ntuples = nullptr;
  decltype(&::PQgetvalue) getvalue = nullptr;
  decltype(&::PQgetlength) getlength = nullptr;
  decltype(&::PQgetisnull) getisnull = nullptr;
  decltype(&::PQcmdTuples) cmdTuples = nullptr;
  decltype(&::PQsetNoticeProcessor) setNoticeProcessor = nullptr;
  decltype(&::PQtransactionStatus) transactionStatus = nullptr;
  decltype(&::PQserverVersion) serverVersion = nullptr;
};

// Loads libpq.so.5. Fails with kUnavailable naming the Debian package to install.
Result<std::shared_ptr<const Libpq>> LoadLibpq();

}  // namespace fastgpu::store::pg
