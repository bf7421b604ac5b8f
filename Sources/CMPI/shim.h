// Open MPI's predefined handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, MPI_STATUS_IGNORE, ...) are
// macros over the addresses of globals, which Swift cannot import; these accessors expose them.
#ifndef SKEIN_CMPI_SHIM_H
#define SKEIN_CMPI_SHIM_H
#include <mpi.h>

static inline MPI_Comm skein_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm skein_mpi_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype skein_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype skein_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype skein_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype skein_mpi_int32(void) { return MPI_INT32_T; }
static inline MPI_Datatype skein_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Op skein_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op skein_mpi_prod(void) { return MPI_PROD; }
static inline MPI_Op skein_mpi_min(void) { return MPI_MIN; }
static inline MPI_Op skein_mpi_max(void) { return MPI_MAX; }
static inline MPI_Status *skein_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Status *skein_mpi_statuses_ignore(void) { return MPI_STATUSES_IGNORE; }
static inline void *skein_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Errhandler skein_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline MPI_Request skein_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Message skein_mpi_message_null(void) { return MPI_MESSAGE_NULL; }
static inline int skein_mpi_any_source(void) { return MPI_ANY_SOURCE; }
static inline int skein_mpi_any_tag(void) { return MPI_ANY_TAG; }
static inline int skein_mpi_undefined(void) { return MPI_UNDEFINED; }
static inline int skein_mpi_thread_single(void) { return MPI_THREAD_SINGLE; }
static inline int skein_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int skein_mpi_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static inline int skein_mpi_thread_multiple(void) { return MPI_THREAD_MULTIPLE; }
static inline int skein_mpi_max_library_version_string(void) { return MPI_MAX_LIBRARY_VERSION_STRING; }
static inline int skein_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline int skein_mpi_max_processor_name(void) { return MPI_MAX_PROCESSOR_NAME; }
static inline MPI_Info skein_mpi_info_null(void) { return MPI_INFO_NULL; }
static inline MPI_Win skein_mpi_win_null(void) { return MPI_WIN_NULL; }
static inline int skein_mpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }

#endif
