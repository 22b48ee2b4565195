#include "store/postgres/libpq.h"

#include <dlfcn.h>

#include <string>

namespace fastgpu::store::pg {

Libpq::~Libpq() {
  if (handle != nullptr) dlclose(handle);
}

namespace {

template <typename F>
Status Resolve(void* handle, const char* name, F& out) {
  void* sym = dlsym(handle, name);
  if (sym == nullptr) {
    return Unavailable(std::string("libpq.so.5 lacks ") + name +
                       " (too old a libpq; install the Debian package libpq5 from bookworm or newer)");
  }
  out = reinterpret_cast<F>(sym);
  return Status::Ok();
}

}  // namespace

Result<std::shared_ptr<const Libpq>> LoadLibpq() {
  auto lib = std::make_shared<Libpq>();
  // Never unloaded (RTLD_NODELETE): libpq and the libraries it pulls in (OpenSSL, Kerberos) keep thread-local
  // state and exit handlers; unloading them while the process goes on leaves dangling TLS behind (LeakSanitizer
  // crashed on it at exit).
  lib->handle = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (lib->handle == nullptr) {
    const char* err = dlerror();
    return Unavailable(std::string("cannot load the PostgreSQL client library libpq.so.5 (") +
                       (err != nullptr ? err : "dlopen failed") + "); install the Debian package libpq5");
  }
  RETURN_IF_ERROR(Resolve(lib->handle, "PQconnectdbParams", lib->connectdbParams));
  RETURN_IF_ERROR(Resolve(lib->handle, "PQstatus", lib->status));
  RETURN_IF_ERROR(Resolve(lib->handle, "PQerrorMessage", lib->errorMessage));
  RETURN_IF_ERROR(Resolve(lib->handle, "PQfinish", lib->finish));
  RETURN_IF_ERROR(Resolve(lib->handle, "PQreset", lib->reset));
  RETURN_IF_ERROR(Resolve(lib->handle, "PQexec", lib->exec));
  RETURN_IF_ERROR(Resolve(lib->handle, "PQprepare", lib->prepare));
  RETURN_IF_ERROR(Resolve(lib->handle, "PQexecPrepared", lib->execPrepared));
  RETURN_IF_ERROR(Resolve(lib->handle, "PQexecParams", lib->execParams));
  RETURN_IF_ERROR(Resolve(lib->handle, "PQresultStatus", lib->resultStatus));
  RETURN_IF_ERROR(Resolve(lib->handle, "PQresultErrorMessage", lib->resultErrorMessage));
  RETURN_IF_ERROR(Resolve(lib->handle, "PQresultErrorField", lib->resultErrorField));
  RETURN_IF_ERROR(Resolve(lib->handle, "PQclear", lib->clear));
  RETURN_IF_ERROR(Resolve(lib->handle, "PQntuples", lib->ntuples));
  RETURN_IF_ERROR(Resolve(lib->handle, "PQgetvalue", lib->getvalue));
  RETURN_IF_ERROR(Resolve(lib->handle, "PQgetlength", lib->getlength));
  RETURN_IF_ERROR(Resolve(lib->handle, "PQgetisnull", lib->getisnull));
  RETURN_IF_ERROR(Resolve(lib->handle, "PQcmdTuples", lib->cmdTuples));
  RETURN_IF_ERROR(Resolve(lib->handle, "PQsetNoticeProcessor", lib->setNoticeProcessor));
  RETURN_IF_ERROR(Resolve(lib->handle, "PQtransactionStatus", lib->transactionStatus));
  RETURN_IF_ERROR(Resolve(lib->handle, "PQserverVersion", lib->serverVersion));
  return std::shared_ptr<const Libpq>(std::move(lib));
}

}  // namespace fastgpu::store::pg
