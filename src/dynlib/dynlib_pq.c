/*
 * Forwarding definitions of the libpq functions nhid may call; libpq.so.5
 * is loaded on the first call (see dynlib.h). A function missing here is
 * a link error: add it with FWD/FWDV, using the prototype in libpq-fe.h.
 */
#include <stddef.h>

#include <libpq-fe.h>

#include "dynlib/dynlib.h"

#define PQ_SONAME "libpq.so.5"

#define RESOLVE(var, name)                                                                         \
    static __typeof__(&name) var;                                                                  \
    if (var == NULL)                                                                               \
        var = (__typeof__(&name))nhid_dynlib_symbol(PQ_SONAME, #name);

#define FWD(ret, name, params, args, fail)                                                         \
    ret name params                                                                                \
    {                                                                                              \
        RESOLVE(fn, name);                                                                         \
        return fn ? fn args : fail;                                                                \
    }

#define FWDV(name, params, args)                                                                   \
    void name params                                                                               \
    {                                                                                              \
        RESOLVE(fn, name);                                                                         \
        if (fn)                                                                                    \
            fn args;                                                                               \
    }

/* Connections */
FWD(PGconn *, PQconnectdb, (const char *conninfo), (conninfo), NULL)
FWD(PGconn *, PQconnectdbParams,
    (const char *const *keywords, const char *const *values, int expand_dbname),
    (keywords, values, expand_dbname), NULL)
FWD(ConnStatusType, PQstatus, (const PGconn *conn), (conn), CONNECTION_BAD)
FWD(char *, PQerrorMessage, (const PGconn *conn), (conn), (char *)nhid_dynlib_error())
FWDV(PQfinish, (PGconn * conn), (conn))
FWDV(PQreset, (PGconn * conn), (conn))
FWD(PGPing, PQping, (const char *conninfo), (conninfo), PQPING_NO_ATTEMPT)
FWD(PGPing, PQpingParams,
    (const char *const *keywords, const char *const *values, int expand_dbname),
    (keywords, values, expand_dbname), PQPING_NO_ATTEMPT)
FWD(PGTransactionStatusType, PQtransactionStatus, (const PGconn *conn), (conn), PQTRANS_UNKNOWN)
FWD(int, PQserverVersion, (const PGconn *conn), (conn), 0)
FWD(int, PQsocket, (const PGconn *conn), (conn), -1)
FWD(int, PQlibVersion, (void), (), 0)
FWD(PQconninfoOption *, PQconninfoParse, (const char *conninfo, char **errmsg), (conninfo, errmsg),
    NULL)
FWDV(PQconninfoFree, (PQconninfoOption * opts), (opts))
FWD(PQnoticeProcessor, PQsetNoticeProcessor, (PGconn * conn, PQnoticeProcessor proc, void *arg),
    (conn, proc, arg), NULL)
FWD(PQnoticeReceiver, PQsetNoticeReceiver, (PGconn * conn, PQnoticeReceiver proc, void *arg),
    (conn, proc, arg), NULL)
FWD(PGVerbosity, PQsetErrorVerbosity, (PGconn * conn, PGVerbosity verbosity), (conn, verbosity),
    PQERRORS_DEFAULT)
FWD(const char *, PQparameterStatus, (const PGconn *conn, const char *name), (conn, name), NULL)

/* Queries */
FWD(PGresult *, PQexec, (PGconn * conn, const char *query), (conn, query), NULL)
FWD(PGresult *, PQexecParams,
    (PGconn * conn, const char *command, int nParams, const Oid *paramTypes,
     const char *const *paramValues, const int *paramLengths, const int *paramFormats,
     int resultFormat),
    (conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats, resultFormat),
    NULL)
FWD(PGresult *, PQprepare,
    (PGconn * conn, const char *stmtName, const char *query, int nParams, const Oid *paramTypes),
    (conn, stmtName, query, nParams, paramTypes), NULL)
FWD(PGresult *, PQexecPrepared,
    (PGconn * conn, const char *stmtName, int nParams, const char *const *paramValues,
     const int *paramLengths, const int *paramFormats, int resultFormat),
    (conn, stmtName, nParams, paramValues, paramLengths, paramFormats, resultFormat), NULL)
FWD(ExecStatusType, PQresultStatus, (const PGresult *res), (res), PGRES_FATAL_ERROR)
FWD(char *, PQresStatus, (ExecStatusType status), (status), "PGRES_FATAL_ERROR")
FWD(char *, PQresultErrorMessage, (const PGresult *res), (res), (char *)nhid_dynlib_error())
FWD(char *, PQresultErrorField, (const PGresult *res, int fieldcode), (res, fieldcode), NULL)
FWDV(PQclear, (PGresult * res), (res))
FWD(int, PQntuples, (const PGresult *res), (res), 0)
FWD(int, PQnfields, (const PGresult *res), (res), 0)
FWD(char *, PQfname, (const PGresult *res, int field_num), (res, field_num), NULL)
FWD(char *, PQgetvalue, (const PGresult *res, int tup_num, int field_num),
    (res, tup_num, field_num), NULL)
FWD(int, PQgetisnull, (const PGresult *res, int tup_num, int field_num), (res, tup_num, field_num),
    1)
FWD(int, PQgetlength, (const PGresult *res, int tup_num, int field_num), (res, tup_num, field_num),
    0)
FWD(char *, PQcmdStatus, (PGresult * res), (res), NULL)
FWD(char *, PQcmdTuples, (PGresult * res), (res), NULL)

/* Escaping and memory */
FWD(char *, PQescapeLiteral, (PGconn * conn, const char *str, size_t len), (conn, str, len), NULL)
FWD(char *, PQescapeIdentifier, (PGconn * conn, const char *str, size_t len), (conn, str, len),
    NULL)
FWD(size_t, PQescapeStringConn,
    (PGconn * conn, char *to, const char *from, size_t length, int *error),
    (conn, to, from, length, error), 0)
FWD(char *, PQencryptPasswordConn,
    (PGconn * conn, const char *passwd, const char *user, const char *algorithm),
    (conn, passwd, user, algorithm), NULL)
FWDV(PQfreemem, (void *ptr), (ptr))
