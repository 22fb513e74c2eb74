from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATE_UNSPECIFIED: _ClassVar[TaskState]
    TASK_STATE_SUCCEEDED: _ClassVar[TaskState]
    TASK_STATE_FAILED: _ClassVar[TaskState]
    TASK_STATE_CANCELLED: _ClassVar[TaskState]
    TASK_STATE_TIMED_OUT: _ClassVar[TaskState]

class ErrorKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_KIND_UNSPECIFIED: _ClassVar[ErrorKind]
    ERROR_KIND_USER: _ClassVar[ErrorKind]
    ERROR_KIND_BAD_INPUT: _ClassVar[ErrorKind]
    ERROR_KIND_BAD_OUTPUT: _ClassVar[ErrorKind]
    ERROR_KIND_REPLICA_LOST: _ClassVar[ErrorKind]
    ERROR_KIND_CANCELLED: _ClassVar[ErrorKind]
    ERROR_KIND_TIMED_OUT: _ClassVar[ErrorKind]
    ERROR_KIND_REJECTED: _ClassVar[ErrorKind]
    ERROR_KIND_INTERNAL: _ClassVar[ErrorKind]
    ERROR_KIND_UNAVAILABLE: _ClassVar[ErrorKind]
    ERROR_KIND_USER_NON_RECOVERABLE: _ClassVar[ErrorKind]

class RunPhase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_PHASE_UNSPECIFIED: _ClassVar[RunPhase]
    RUN_PHASE_QUEUED: _ClassVar[RunPhase]
    RUN_PHASE_WAITING_FOR_RESOURCES: _ClassVar[RunPhase]
    RUN_PHASE_INITIALIZING: _ClassVar[RunPhase]
    RUN_PHASE_RUNNING: _ClassVar[RunPhase]
    RUN_PHASE_SUCCEEDED: _ClassVar[RunPhase]
    RUN_PHASE_FAILED: _ClassVar[RunPhase]
    RUN_PHASE_ABORTED: _ClassVar[RunPhase]
    RUN_PHASE_TIMED_OUT: _ClassVar[RunPhase]
TASK_STATE_UNSPECIFIED: TaskState
TASK_STATE_SUCCEEDED: TaskState
TASK_STATE_FAILED: TaskState
TASK_STATE_CANCELLED: TaskState
TASK_STATE_TIMED_OUT: TaskState
ERROR_KIND_UNSPECIFIED: ErrorKind
ERROR_KIND_USER: ErrorKind
ERROR_KIND_BAD_INPUT: ErrorKind
ERROR_KIND_BAD_OUTPUT: ErrorKind
ERROR_KIND_REPLICA_LOST: ErrorKind
ERROR_KIND_CANCELLED: ErrorKind
ERROR_KIND_TIMED_OUT: ErrorKind
ERROR_KIND_REJECTED: ErrorKind
ERROR_KIND_INTERNAL: ErrorKind
ERROR_KIND_UNAVAILABLE: ErrorKind
ERROR_KIND_USER_NON_RECOVERABLE: ErrorKind
RUN_PHASE_UNSPECIFIED: RunPhase
RUN_PHASE_QUEUED: RunPhase
RUN_PHASE_WAITING_FOR_RESOURCES: RunPhase
RUN_PHASE_INITIALIZING: RunPhase
RUN_PHASE_RUNNING: RunPhase
RUN_PHASE_SUCCEEDED: RunPhase
RUN_PHASE_FAILED: RunPhase
RUN_PHASE_ABORTED: RunPhase
RUN_PHASE_TIMED_OUT: RunPhase

class FunctionRef(_message.Message):
    __slots__ = ("module", "qualname", "code_version")
    MODULE_FIELD_NUMBER: _ClassVar[int]
    QUALNAME_FIELD_NUMBER: _ClassVar[int]
    CODE_VERSION_FIELD_NUMBER: _ClassVar[int]
    module: str
    qualname: str
    code_version: str
    def __init__(self, module: _Optional[str] = ..., qualname: _Optional[str] = ..., code_version: _Optional[str] = ...) -> None: ...

class CodeBundle(_message.Message):
    __slots__ = ("module", "digest", "filename", "source")
    MODULE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    module: str
    digest: str
    filename: str
    source: bytes
    def __init__(self, module: _Optional[str] = ..., digest: _Optional[str] = ..., filename: _Optional[str] = ..., source: _Optional[bytes] = ...) -> None: ...

class TaskSpec(_message.Message):
    __slots__ = ("task_id", "name", "ref", "pickled", "args", "bundle", "timeout_seconds", "run_id", "parent_task_id", "extras", "call_key")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    PICKLED_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRAS_FIELD_NUMBER: _ClassVar[int]
    CALL_KEY_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    name: str
    ref: FunctionRef
    pickled: bytes
    args: bytes
    bundle: CodeBundle
    timeout_seconds: float
    run_id: str
    parent_task_id: str
    extras: TaskExtras
    call_key: str
    def __init__(self, task_id: _Optional[str] = ..., name: _Optional[str] = ..., ref: _Optional[_Union[FunctionRef, _Mapping]] = ..., pickled: _Optional[bytes] = ..., args: _Optional[bytes] = ..., bundle: _Optional[_Union[CodeBundle, _Mapping]] = ..., timeout_seconds: _Optional[float] = ..., run_id: _Optional[str] = ..., parent_task_id: _Optional[str] = ..., extras: _Optional[_Union[TaskExtras, _Mapping]] = ..., call_key: _Optional[str] = ...) -> None: ...

class TaskExtras(_message.Message):
    __slots__ = ("group", "custom_context", "attempt", "run_options")
    class CustomContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    GROUP_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    RUN_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    group: str
    custom_context: _containers.ScalarMap[str, str]
    attempt: int
    run_options: RunOptions
    def __init__(self, group: _Optional[str] = ..., custom_context: _Optional[_Mapping[str, str]] = ..., attempt: _Optional[int] = ..., run_options: _Optional[_Union[RunOptions, _Mapping]] = ...) -> None: ...

class RunOptions(_message.Message):
    __slots__ = ("overwrite_cache", "disable_cache", "env_vars", "log_level")
    class EnvVarsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    OVERWRITE_CACHE_FIELD_NUMBER: _ClassVar[int]
    DISABLE_CACHE_FIELD_NUMBER: _ClassVar[int]
    ENV_VARS_FIELD_NUMBER: _ClassVar[int]
    LOG_LEVEL_FIELD_NUMBER: _ClassVar[int]
    overwrite_cache: bool
    disable_cache: bool
    env_vars: _containers.ScalarMap[str, str]
    log_level: int
    def __init__(self, overwrite_cache: _Optional[bool] = ..., disable_cache: _Optional[bool] = ..., env_vars: _Optional[_Mapping[str, str]] = ..., log_level: _Optional[int] = ...) -> None: ...

class RemoteError(_message.Message):
    __slots__ = ("kind", "type", "message", "traceback", "pickled")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TRACEBACK_FIELD_NUMBER: _ClassVar[int]
    PICKLED_FIELD_NUMBER: _ClassVar[int]
    kind: ErrorKind
    type: str
    message: str
    traceback: str
    pickled: bytes
    def __init__(self, kind: _Optional[_Union[ErrorKind, str]] = ..., type: _Optional[str] = ..., message: _Optional[str] = ..., traceback: _Optional[str] = ..., pickled: _Optional[bytes] = ...) -> None: ...

class TaskResult(_message.Message):
    __slots__ = ("task_id", "state", "value", "error", "replica_id", "duration_seconds", "attempts", "cached")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    state: TaskState
    value: bytes
    error: RemoteError
    replica_id: str
    duration_seconds: float
    attempts: int
    cached: bool
    def __init__(self, task_id: _Optional[str] = ..., state: _Optional[_Union[TaskState, str]] = ..., value: _Optional[bytes] = ..., error: _Optional[_Union[RemoteError, _Mapping]] = ..., replica_id: _Optional[str] = ..., duration_seconds: _Optional[float] = ..., attempts: _Optional[int] = ..., cached: _Optional[bool] = ...) -> None: ...

class LogLine(_message.Message):
    __slots__ = ("task_id", "task_name", "run_id", "stream", "text", "parent_task_id", "replica_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_NAME_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PARENT_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    task_name: str
    run_id: str
    stream: str
    text: str
    parent_task_id: str
    replica_id: str
    def __init__(self, task_id: _Optional[str] = ..., task_name: _Optional[str] = ..., run_id: _Optional[str] = ..., stream: _Optional[str] = ..., text: _Optional[str] = ..., parent_task_id: _Optional[str] = ..., replica_id: _Optional[str] = ...) -> None: ...

class DispatchBatch(_message.Message):
    __slots__ = ("tasks", "cancel")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[TaskSpec]
    cancel: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tasks: _Optional[_Iterable[_Union[TaskSpec, _Mapping]]] = ..., cancel: _Optional[_Iterable[str]] = ...) -> None: ...

class ResultBatch(_message.Message):
    __slots__ = ("results", "logs")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[TaskResult]
    logs: _containers.RepeatedCompositeFieldContainer[LogLine]
    def __init__(self, results: _Optional[_Iterable[_Union[TaskResult, _Mapping]]] = ..., logs: _Optional[_Iterable[_Union[LogLine, _Mapping]]] = ...) -> None: ...

class ReplicaReport(_message.Message):
    __slots__ = ("replica_id", "active", "capacity", "waiting", "idle_since", "idle_seconds", "completed", "failed", "rss_bytes", "loop_lag_seconds", "draining", "uptime_seconds", "loop_blocked_by", "sent_at", "recycle_reason")
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    IDLE_SINCE_FIELD_NUMBER: _ClassVar[int]
    IDLE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    LOOP_LAG_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LOOP_BLOCKED_BY_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    RECYCLE_REASON_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    active: int
    capacity: int
    waiting: int
    idle_since: float
    idle_seconds: float
    completed: int
    failed: int
    rss_bytes: int
    loop_lag_seconds: float
    draining: bool
    uptime_seconds: float
    loop_blocked_by: str
    sent_at: float
    recycle_reason: str
    def __init__(self, replica_id: _Optional[str] = ..., active: _Optional[int] = ..., capacity: _Optional[int] = ..., waiting: _Optional[int] = ..., idle_since: _Optional[float] = ..., idle_seconds: _Optional[float] = ..., completed: _Optional[int] = ..., failed: _Optional[int] = ..., rss_bytes: _Optional[int] = ..., loop_lag_seconds: _Optional[float] = ..., draining: _Optional[bool] = ..., uptime_seconds: _Optional[float] = ..., loop_blocked_by: _Optional[str] = ..., sent_at: _Optional[float] = ..., recycle_reason: _Optional[str] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("task_id", "run_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    run_id: str
    def __init__(self, task_id: _Optional[str] = ..., run_id: _Optional[str] = ...) -> None: ...

class CancelReply(_message.Message):
    __slots__ = ("cancelled",)
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    cancelled: int
    def __init__(self, cancelled: _Optional[int] = ...) -> None: ...

class ReplicaHello(_message.Message):
    __slots__ = ("replica_id", "capacity", "address", "pid", "environment")
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    capacity: int
    address: str
    pid: int
    environment: str
    def __init__(self, replica_id: _Optional[str] = ..., capacity: _Optional[int] = ..., address: _Optional[str] = ..., pid: _Optional[int] = ..., environment: _Optional[str] = ...) -> None: ...

class WorkerMessage(_message.Message):
    __slots__ = ("hello", "report", "results")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    hello: ReplicaHello
    report: ReplicaReport
    results: ResultBatch
    def __init__(self, hello: _Optional[_Union[ReplicaHello, _Mapping]] = ..., report: _Optional[_Union[ReplicaReport, _Mapping]] = ..., results: _Optional[_Union[ResultBatch, _Mapping]] = ...) -> None: ...

class DrainCommand(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class ReplicaInit(_message.Message):
    __slots__ = ("on_start", "on_stop", "bundle", "stop_grace_seconds", "environment", "idle_heartbeat_seconds", "code_bundle", "fetch_code")
    ON_START_FIELD_NUMBER: _ClassVar[int]
    ON_STOP_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_FIELD_NUMBER: _ClassVar[int]
    STOP_GRACE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    IDLE_HEARTBEAT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CODE_BUNDLE_FIELD_NUMBER: _ClassVar[int]
    FETCH_CODE_FIELD_NUMBER: _ClassVar[int]
    on_start: FunctionRef
    on_stop: FunctionRef
    bundle: CodeBundle
    stop_grace_seconds: float
    environment: str
    idle_heartbeat_seconds: float
    code_bundle: str
    fetch_code: bool
    def __init__(self, on_start: _Optional[_Union[FunctionRef, _Mapping]] = ..., on_stop: _Optional[_Union[FunctionRef, _Mapping]] = ..., bundle: _Optional[_Union[CodeBundle, _Mapping]] = ..., stop_grace_seconds: _Optional[float] = ..., environment: _Optional[str] = ..., idle_heartbeat_seconds: _Optional[float] = ..., code_bundle: _Optional[str] = ..., fetch_code: _Optional[bool] = ...) -> None: ...

class ControllerMessage(_message.Message):
    __slots__ = ("dispatch", "drain", "init")
    DISPATCH_FIELD_NUMBER: _ClassVar[int]
    DRAIN_FIELD_NUMBER: _ClassVar[int]
    INIT_FIELD_NUMBER: _ClassVar[int]
    dispatch: DispatchBatch
    drain: DrainCommand
    init: ReplicaInit
    def __init__(self, dispatch: _Optional[_Union[DispatchBatch, _Mapping]] = ..., drain: _Optional[_Union[DrainCommand, _Mapping]] = ..., init: _Optional[_Union[ReplicaInit, _Mapping]] = ...) -> None: ...

class PolicySpec(_message.Message):
    __slots__ = ("min_replicas", "max_replicas", "concurrency", "scaledown_ttl_seconds", "idle_ttl_seconds", "max_tasks", "max_rss_bytes", "max_lifetime_seconds", "reusable")
    MIN_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    MAX_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    SCALEDOWN_TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    IDLE_TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_TASKS_FIELD_NUMBER: _ClassVar[int]
    MAX_RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_LIFETIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REUSABLE_FIELD_NUMBER: _ClassVar[int]
    min_replicas: int
    max_replicas: int
    concurrency: int
    scaledown_ttl_seconds: float
    idle_ttl_seconds: float
    max_tasks: int
    max_rss_bytes: int
    max_lifetime_seconds: float
    reusable: bool
    def __init__(self, min_replicas: _Optional[int] = ..., max_replicas: _Optional[int] = ..., concurrency: _Optional[int] = ..., scaledown_ttl_seconds: _Optional[float] = ..., idle_ttl_seconds: _Optional[float] = ..., max_tasks: _Optional[int] = ..., max_rss_bytes: _Optional[int] = ..., max_lifetime_seconds: _Optional[float] = ..., reusable: _Optional[bool] = ...) -> None: ...

class EnvironmentSpec(_message.Message):
    __slots__ = ("name", "policy", "image", "resources", "code_version", "working_dir", "python_path", "env_vars", "on_start", "on_stop", "hooks_bundle", "stop_grace_seconds", "scope", "code_bundle")
    class EnvVarsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    CODE_VERSION_FIELD_NUMBER: _ClassVar[int]
    WORKING_DIR_FIELD_NUMBER: _ClassVar[int]
    PYTHON_PATH_FIELD_NUMBER: _ClassVar[int]
    ENV_VARS_FIELD_NUMBER: _ClassVar[int]
    ON_START_FIELD_NUMBER: _ClassVar[int]
    ON_STOP_FIELD_NUMBER: _ClassVar[int]
    HOOKS_BUNDLE_FIELD_NUMBER: _ClassVar[int]
    STOP_GRACE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    CODE_BUNDLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    policy: PolicySpec
    image: str
    resources: str
    code_version: str
    working_dir: str
    python_path: _containers.RepeatedScalarFieldContainer[str]
    env_vars: _containers.ScalarMap[str, str]
    on_start: FunctionRef
    on_stop: FunctionRef
    hooks_bundle: CodeBundle
    stop_grace_seconds: float
    scope: str
    code_bundle: str
    def __init__(self, name: _Optional[str] = ..., policy: _Optional[_Union[PolicySpec, _Mapping]] = ..., image: _Optional[str] = ..., resources: _Optional[str] = ..., code_version: _Optional[str] = ..., working_dir: _Optional[str] = ..., python_path: _Optional[_Iterable[str]] = ..., env_vars: _Optional[_Mapping[str, str]] = ..., on_start: _Optional[_Union[FunctionRef, _Mapping]] = ..., on_stop: _Optional[_Union[FunctionRef, _Mapping]] = ..., hooks_bundle: _Optional[_Union[CodeBundle, _Mapping]] = ..., stop_grace_seconds: _Optional[float] = ..., scope: _Optional[str] = ..., code_bundle: _Optional[str] = ...) -> None: ...

class EnvironmentRef(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class RetryBackoff(_message.Message):
    __slots__ = ("base_seconds", "factor", "cap_seconds")
    BASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FACTOR_FIELD_NUMBER: _ClassVar[int]
    CAP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    base_seconds: float
    factor: float
    cap_seconds: float
    def __init__(self, base_seconds: _Optional[float] = ..., factor: _Optional[float] = ..., cap_seconds: _Optional[float] = ...) -> None: ...

class Submission(_message.Message):
    __slots__ = ("env_key", "task", "retries", "stream_logs", "extras")
    ENV_KEY_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    STREAM_LOGS_FIELD_NUMBER: _ClassVar[int]
    EXTRAS_FIELD_NUMBER: _ClassVar[int]
    env_key: str
    task: TaskSpec
    retries: int
    stream_logs: bool
    extras: SubmitExtras
    def __init__(self, env_key: _Optional[str] = ..., task: _Optional[_Union[TaskSpec, _Mapping]] = ..., retries: _Optional[int] = ..., stream_logs: _Optional[bool] = ..., extras: _Optional[_Union[SubmitExtras, _Mapping]] = ...) -> None: ...

class SubmitExtras(_message.Message):
    __slots__ = ("cache_key", "cache_overwrite", "retry_backoff", "cache_max_age_seconds")
    CACHE_KEY_FIELD_NUMBER: _ClassVar[int]
    CACHE_OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    RETRY_BACKOFF_FIELD_NUMBER: _ClassVar[int]
    CACHE_MAX_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    cache_key: str
    cache_overwrite: bool
    retry_backoff: RetryBackoff
    cache_max_age_seconds: float
    def __init__(self, cache_key: _Optional[str] = ..., cache_overwrite: _Optional[bool] = ..., retry_backoff: _Optional[_Union[RetryBackoff, _Mapping]] = ..., cache_max_age_seconds: _Optional[float] = ...) -> None: ...

class SubmitBatch(_message.Message):
    __slots__ = ("submissions", "cancel", "held")
    SUBMISSIONS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    submissions: _containers.RepeatedCompositeFieldContainer[Submission]
    cancel: _containers.RepeatedScalarFieldContainer[str]
    held: _containers.RepeatedCompositeFieldContainer[HeldTasks]
    def __init__(self, submissions: _Optional[_Iterable[_Union[Submission, _Mapping]]] = ..., cancel: _Optional[_Iterable[str]] = ..., held: _Optional[_Iterable[_Union[HeldTasks, _Mapping]]] = ...) -> None: ...

class HeldTasks(_message.Message):
    __slots__ = ("run_id", "count")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    count: int
    def __init__(self, run_id: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class SubmitEvents(_message.Message):
    __slots__ = ("results", "logs", "returned")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    RETURNED_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[TaskResult]
    logs: _containers.RepeatedCompositeFieldContainer[LogLine]
    returned: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, results: _Optional[_Iterable[_Union[TaskResult, _Mapping]]] = ..., logs: _Optional[_Iterable[_Union[LogLine, _Mapping]]] = ..., returned: _Optional[_Iterable[str]] = ...) -> None: ...

class ReplicaStatus(_message.Message):
    __slots__ = ("replica_id", "state", "report", "assigned", "where", "retire_reason", "external")
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    RETIRE_REASON_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    state: str
    report: ReplicaReport
    assigned: int
    where: str
    retire_reason: str
    external: bool
    def __init__(self, replica_id: _Optional[str] = ..., state: _Optional[str] = ..., report: _Optional[_Union[ReplicaReport, _Mapping]] = ..., assigned: _Optional[int] = ..., where: _Optional[str] = ..., retire_reason: _Optional[str] = ..., external: _Optional[bool] = ...) -> None: ...

class GroupStatus(_message.Message):
    __slots__ = ("name", "running", "succeeded", "failed")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    name: str
    running: int
    succeeded: int
    failed: int
    def __init__(self, name: _Optional[str] = ..., running: _Optional[int] = ..., succeeded: _Optional[int] = ..., failed: _Optional[int] = ...) -> None: ...

class EnvironmentStatus(_message.Message):
    __slots__ = ("key", "name", "min_replicas", "max_replicas", "concurrency", "backlog", "replicas", "completed", "failed", "dormant", "last_error", "cache_hits", "groups", "events", "cancelled", "late_results", "version", "superseded", "runs")
    KEY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MIN_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    MAX_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    BACKLOG_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    DORMANT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    CACHE_HITS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    LATE_RESULTS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDED_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    key: str
    name: str
    min_replicas: int
    max_replicas: int
    concurrency: int
    backlog: int
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaStatus]
    completed: int
    failed: int
    dormant: bool
    last_error: str
    cache_hits: int
    groups: _containers.RepeatedCompositeFieldContainer[GroupStatus]
    events: _containers.RepeatedCompositeFieldContainer[PoolEvent]
    cancelled: int
    late_results: int
    version: str
    superseded: bool
    runs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, key: _Optional[str] = ..., name: _Optional[str] = ..., min_replicas: _Optional[int] = ..., max_replicas: _Optional[int] = ..., concurrency: _Optional[int] = ..., backlog: _Optional[int] = ..., replicas: _Optional[_Iterable[_Union[ReplicaStatus, _Mapping]]] = ..., completed: _Optional[int] = ..., failed: _Optional[int] = ..., dormant: _Optional[bool] = ..., last_error: _Optional[str] = ..., cache_hits: _Optional[int] = ..., groups: _Optional[_Iterable[_Union[GroupStatus, _Mapping]]] = ..., events: _Optional[_Iterable[_Union[PoolEvent, _Mapping]]] = ..., cancelled: _Optional[int] = ..., late_results: _Optional[int] = ..., version: _Optional[str] = ..., superseded: _Optional[bool] = ..., runs: _Optional[_Iterable[str]] = ...) -> None: ...

class PoolEvent(_message.Message):
    __slots__ = ("at", "kind", "replica_id", "reason", "detail")
    AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    at: float
    kind: str
    replica_id: str
    reason: str
    detail: str
    def __init__(self, at: _Optional[float] = ..., kind: _Optional[str] = ..., replica_id: _Optional[str] = ..., reason: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class RunProgressRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class RunProgress(_message.Message):
    __slots__ = ("found", "children", "held", "running", "succeeded", "failed", "retried", "ended")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    RETRIED_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    found: bool
    children: int
    held: int
    running: int
    succeeded: int
    failed: int
    retried: int
    ended: bool
    def __init__(self, found: _Optional[bool] = ..., children: _Optional[int] = ..., held: _Optional[int] = ..., running: _Optional[int] = ..., succeeded: _Optional[int] = ..., failed: _Optional[int] = ..., retried: _Optional[int] = ..., ended: _Optional[bool] = ...) -> None: ...

class ControllerStatus(_message.Message):
    __slots__ = ("environments", "rss_bytes", "address")
    ENVIRONMENTS_FIELD_NUMBER: _ClassVar[int]
    RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    environments: _containers.RepeatedCompositeFieldContainer[EnvironmentStatus]
    rss_bytes: int
    address: str
    def __init__(self, environments: _Optional[_Iterable[_Union[EnvironmentStatus, _Mapping]]] = ..., rss_bytes: _Optional[int] = ..., address: _Optional[str] = ...) -> None: ...

class ReportReply(_message.Message):
    __slots__ = ("known",)
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    known: bool
    def __init__(self, known: _Optional[bool] = ...) -> None: ...

class RunClient(_message.Message):
    __slots__ = ("client_id", "user", "host")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    user: str
    host: str
    def __init__(self, client_id: _Optional[str] = ..., user: _Optional[str] = ..., host: _Optional[str] = ...) -> None: ...

class StringPair(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class CreateRunRequest(_message.Message):
    __slots__ = ("name", "environment", "root", "inputs_preview", "labels", "client", "inputs")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    INPUTS_PREVIEW_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    environment: EnvironmentSpec
    root: Submission
    inputs_preview: str
    labels: _containers.RepeatedCompositeFieldContainer[StringPair]
    client: RunClient
    inputs: bytes
    def __init__(self, name: _Optional[str] = ..., environment: _Optional[_Union[EnvironmentSpec, _Mapping]] = ..., root: _Optional[_Union[Submission, _Mapping]] = ..., inputs_preview: _Optional[str] = ..., labels: _Optional[_Iterable[_Union[StringPair, _Mapping]]] = ..., client: _Optional[_Union[RunClient, _Mapping]] = ..., inputs: _Optional[bytes] = ...) -> None: ...

class RunErrorInfo(_message.Message):
    __slots__ = ("kind", "type", "message", "traceback")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TRACEBACK_FIELD_NUMBER: _ClassVar[int]
    kind: str
    type: str
    message: str
    traceback: str
    def __init__(self, kind: _Optional[str] = ..., type: _Optional[str] = ..., message: _Optional[str] = ..., traceback: _Optional[str] = ...) -> None: ...

class RunInfo(_message.Message):
    __slots__ = ("name", "phase", "task", "environment", "root_action_id", "client", "created", "started", "ended", "inputs_preview", "inputs_size", "output_size", "error", "labels", "counts", "url")
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    ROOT_ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    INPUTS_PREVIEW_FIELD_NUMBER: _ClassVar[int]
    INPUTS_SIZE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SIZE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    name: str
    phase: RunPhase
    task: str
    environment: str
    root_action_id: str
    client: RunClient
    created: float
    started: float
    ended: float
    inputs_preview: str
    inputs_size: int
    output_size: int
    error: RunErrorInfo
    labels: _containers.RepeatedCompositeFieldContainer[StringPair]
    counts: _containers.ScalarMap[int, int]
    url: str
    def __init__(self, name: _Optional[str] = ..., phase: _Optional[_Union[RunPhase, str]] = ..., task: _Optional[str] = ..., environment: _Optional[str] = ..., root_action_id: _Optional[str] = ..., client: _Optional[_Union[RunClient, _Mapping]] = ..., created: _Optional[float] = ..., started: _Optional[float] = ..., ended: _Optional[float] = ..., inputs_preview: _Optional[str] = ..., inputs_size: _Optional[int] = ..., output_size: _Optional[int] = ..., error: _Optional[_Union[RunErrorInfo, _Mapping]] = ..., labels: _Optional[_Iterable[_Union[StringPair, _Mapping]]] = ..., counts: _Optional[_Mapping[int, int]] = ..., url: _Optional[str] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ("phases", "environment", "task", "name_contains", "user", "labels", "label_keys", "created_after", "created_before", "limit", "cursor")
    PHASES_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    NAME_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    LABEL_KEYS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    phases: _containers.RepeatedScalarFieldContainer[RunPhase]
    environment: str
    task: str
    name_contains: str
    user: str
    labels: _containers.RepeatedCompositeFieldContainer[StringPair]
    label_keys: _containers.RepeatedScalarFieldContainer[str]
    created_after: float
    created_before: float
    limit: int
    cursor: str
    def __init__(self, phases: _Optional[_Iterable[_Union[RunPhase, str]]] = ..., environment: _Optional[str] = ..., task: _Optional[str] = ..., name_contains: _Optional[str] = ..., user: _Optional[str] = ..., labels: _Optional[_Iterable[_Union[StringPair, _Mapping]]] = ..., label_keys: _Optional[_Iterable[str]] = ..., created_after: _Optional[float] = ..., created_before: _Optional[float] = ..., limit: _Optional[int] = ..., cursor: _Optional[str] = ...) -> None: ...

class ListRunsReply(_message.Message):
    __slots__ = ("runs", "cursor")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[RunInfo]
    cursor: str
    def __init__(self, runs: _Optional[_Iterable[_Union[RunInfo, _Mapping]]] = ..., cursor: _Optional[str] = ...) -> None: ...

class RunLogLine(_message.Message):
    __slots__ = ("action_id", "task_name", "parent_action_id", "replica_id", "stream", "text", "at", "seq", "line", "dropped_before")
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_NAME_FIELD_NUMBER: _ClassVar[int]
    PARENT_ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    DROPPED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    action_id: str
    task_name: str
    parent_action_id: str
    replica_id: str
    stream: str
    text: str
    at: float
    seq: int
    line: int
    dropped_before: int
    def __init__(self, action_id: _Optional[str] = ..., task_name: _Optional[str] = ..., parent_action_id: _Optional[str] = ..., replica_id: _Optional[str] = ..., stream: _Optional[str] = ..., text: _Optional[str] = ..., at: _Optional[float] = ..., seq: _Optional[int] = ..., line: _Optional[int] = ..., dropped_before: _Optional[int] = ...) -> None: ...

class WatchRunRequest(_message.Message):
    __slots__ = ("name", "logs", "cursor")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    name: str
    logs: bool
    cursor: str
    def __init__(self, name: _Optional[str] = ..., logs: _Optional[bool] = ..., cursor: _Optional[str] = ...) -> None: ...

class RunEvent(_message.Message):
    __slots__ = ("run", "lines", "cursor", "result")
    RUN_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    run: RunInfo
    lines: _containers.RepeatedCompositeFieldContainer[RunLogLine]
    cursor: str
    result: TaskResult
    def __init__(self, run: _Optional[_Union[RunInfo, _Mapping]] = ..., lines: _Optional[_Iterable[_Union[RunLogLine, _Mapping]]] = ..., cursor: _Optional[str] = ..., result: _Optional[_Union[TaskResult, _Mapping]] = ...) -> None: ...

class AbortRunRequest(_message.Message):
    __slots__ = ("name", "reason", "action_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    action_id: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ..., action_id: _Optional[str] = ...) -> None: ...

class AbortRunReply(_message.Message):
    __slots__ = ("cancelled",)
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    cancelled: int
    def __init__(self, cancelled: _Optional[int] = ...) -> None: ...

class ActionAttempt(_message.Message):
    __slots__ = ("attempt", "replica", "started", "ended", "phase", "error")
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    replica: str
    started: float
    ended: float
    phase: RunPhase
    error: RunErrorInfo
    def __init__(self, attempt: _Optional[int] = ..., replica: _Optional[str] = ..., started: _Optional[float] = ..., ended: _Optional[float] = ..., phase: _Optional[_Union[RunPhase, str]] = ..., error: _Optional[_Union[RunErrorInfo, _Mapping]] = ...) -> None: ...

class ActionTrace(_message.Message):
    __slots__ = ("name", "start", "duration", "error_type")
    NAME_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    ERROR_TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    start: float
    duration: float
    error_type: str
    def __init__(self, name: _Optional[str] = ..., start: _Optional[float] = ..., duration: _Optional[float] = ..., error_type: _Optional[str] = ...) -> None: ...

class ActionInfo(_message.Message):
    __slots__ = ("run", "action_id", "parent_id", "call_key", "task", "environment", "group", "phase", "created", "started", "ended", "replica", "inputs_preview", "output_size", "error", "attempts", "traces", "children")
    RUN_FIELD_NUMBER: _ClassVar[int]
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    CALL_KEY_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    INPUTS_PREVIEW_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SIZE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    TRACES_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    run: str
    action_id: str
    parent_id: str
    call_key: str
    task: str
    environment: str
    group: str
    phase: RunPhase
    created: float
    started: float
    ended: float
    replica: str
    inputs_preview: str
    output_size: int
    error: RunErrorInfo
    attempts: _containers.RepeatedCompositeFieldContainer[ActionAttempt]
    traces: _containers.RepeatedCompositeFieldContainer[ActionTrace]
    children: int
    def __init__(self, run: _Optional[str] = ..., action_id: _Optional[str] = ..., parent_id: _Optional[str] = ..., call_key: _Optional[str] = ..., task: _Optional[str] = ..., environment: _Optional[str] = ..., group: _Optional[str] = ..., phase: _Optional[_Union[RunPhase, str]] = ..., created: _Optional[float] = ..., started: _Optional[float] = ..., ended: _Optional[float] = ..., replica: _Optional[str] = ..., inputs_preview: _Optional[str] = ..., output_size: _Optional[int] = ..., error: _Optional[_Union[RunErrorInfo, _Mapping]] = ..., attempts: _Optional[_Iterable[_Union[ActionAttempt, _Mapping]]] = ..., traces: _Optional[_Iterable[_Union[ActionTrace, _Mapping]]] = ..., children: _Optional[int] = ...) -> None: ...

class ListActionsRequest(_message.Message):
    __slots__ = ("run", "parent", "group", "phases", "limit", "cursor")
    RUN_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    PHASES_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    run: str
    parent: str
    group: str
    phases: _containers.RepeatedScalarFieldContainer[RunPhase]
    limit: int
    cursor: str
    def __init__(self, run: _Optional[str] = ..., parent: _Optional[str] = ..., group: _Optional[str] = ..., phases: _Optional[_Iterable[_Union[RunPhase, str]]] = ..., limit: _Optional[int] = ..., cursor: _Optional[str] = ...) -> None: ...

class ListActionsReply(_message.Message):
    __slots__ = ("actions", "cursor")
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    actions: _containers.RepeatedCompositeFieldContainer[ActionInfo]
    cursor: str
    def __init__(self, actions: _Optional[_Iterable[_Union[ActionInfo, _Mapping]]] = ..., cursor: _Optional[str] = ...) -> None: ...

class GetActionRequest(_message.Message):
    __slots__ = ("run", "action_id")
    RUN_FIELD_NUMBER: _ClassVar[int]
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    run: str
    action_id: str
    def __init__(self, run: _Optional[str] = ..., action_id: _Optional[str] = ...) -> None: ...

class GetLogsRequest(_message.Message):
    __slots__ = ("run", "action_id", "follow", "after")
    RUN_FIELD_NUMBER: _ClassVar[int]
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    run: str
    action_id: str
    follow: bool
    after: int
    def __init__(self, run: _Optional[str] = ..., action_id: _Optional[str] = ..., follow: _Optional[bool] = ..., after: _Optional[int] = ...) -> None: ...

class LogBatch(_message.Message):
    __slots__ = ("lines",)
    LINES_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[RunLogLine]
    def __init__(self, lines: _Optional[_Iterable[_Union[RunLogLine, _Mapping]]] = ...) -> None: ...

class GetRunIORequest(_message.Message):
    __slots__ = ("run", "action_id")
    RUN_FIELD_NUMBER: _ClassVar[int]
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    run: str
    action_id: str
    def __init__(self, run: _Optional[str] = ..., action_id: _Optional[str] = ...) -> None: ...

class RunIO(_message.Message):
    __slots__ = ("phase", "inputs_preview", "has_inputs", "inputs", "has_output", "output", "error")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    INPUTS_PREVIEW_FIELD_NUMBER: _ClassVar[int]
    HAS_INPUTS_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    HAS_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    phase: RunPhase
    inputs_preview: str
    has_inputs: bool
    inputs: bytes
    has_output: bool
    output: bytes
    error: RemoteError
    def __init__(self, phase: _Optional[_Union[RunPhase, str]] = ..., inputs_preview: _Optional[str] = ..., has_inputs: _Optional[bool] = ..., inputs: _Optional[bytes] = ..., has_output: _Optional[bool] = ..., output: _Optional[bytes] = ..., error: _Optional[_Union[RemoteError, _Mapping]] = ...) -> None: ...

class ConditionValue(_message.Message):
    __slots__ = ("bool_value", "int_value", "float_value", "string_value")
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    FLOAT_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    bool_value: bool
    int_value: int
    float_value: float
    string_value: str
    def __init__(self, bool_value: _Optional[bool] = ..., int_value: _Optional[int] = ..., float_value: _Optional[float] = ..., string_value: _Optional[str] = ...) -> None: ...

class ConditionInfo(_message.Message):
    __slots__ = ("run", "parent_action_id", "name", "action_id", "prompt", "prompt_type", "data_type", "description", "timeout", "phase", "created", "ended", "value", "reason", "webhook_url", "webhook_payload")
    RUN_FIELD_NUMBER: _ClassVar[int]
    PARENT_ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_URL_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    run: str
    parent_action_id: str
    name: str
    action_id: str
    prompt: str
    prompt_type: str
    data_type: str
    description: str
    timeout: float
    phase: RunPhase
    created: float
    ended: float
    value: ConditionValue
    reason: str
    webhook_url: str
    webhook_payload: str
    def __init__(self, run: _Optional[str] = ..., parent_action_id: _Optional[str] = ..., name: _Optional[str] = ..., action_id: _Optional[str] = ..., prompt: _Optional[str] = ..., prompt_type: _Optional[str] = ..., data_type: _Optional[str] = ..., description: _Optional[str] = ..., timeout: _Optional[float] = ..., phase: _Optional[_Union[RunPhase, str]] = ..., created: _Optional[float] = ..., ended: _Optional[float] = ..., value: _Optional[_Union[ConditionValue, _Mapping]] = ..., reason: _Optional[str] = ..., webhook_url: _Optional[str] = ..., webhook_payload: _Optional[str] = ...) -> None: ...

class ListConditionsRequest(_message.Message):
    __slots__ = ("run", "parent")
    RUN_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    run: str
    parent: str
    def __init__(self, run: _Optional[str] = ..., parent: _Optional[str] = ...) -> None: ...

class ListConditionsReply(_message.Message):
    __slots__ = ("conditions",)
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    conditions: _containers.RepeatedCompositeFieldContainer[ConditionInfo]
    def __init__(self, conditions: _Optional[_Iterable[_Union[ConditionInfo, _Mapping]]] = ...) -> None: ...

class SignalConditionRequest(_message.Message):
    __slots__ = ("run", "name", "value")
    RUN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    run: str
    name: str
    value: ConditionValue
    def __init__(self, run: _Optional[str] = ..., name: _Optional[str] = ..., value: _Optional[_Union[ConditionValue, _Mapping]] = ...) -> None: ...

class WaitConditionRequest(_message.Message):
    __slots__ = ("run", "action_id", "max_wait")
    RUN_FIELD_NUMBER: _ClassVar[int]
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_WAIT_FIELD_NUMBER: _ClassVar[int]
    run: str
    action_id: str
    max_wait: float
    def __init__(self, run: _Optional[str] = ..., action_id: _Optional[str] = ..., max_wait: _Optional[float] = ...) -> None: ...

class BundleRequest(_message.Message):
    __slots__ = ("digest",)
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    digest: str
    def __init__(self, digest: _Optional[str] = ...) -> None: ...

class BundleReceipt(_message.Message):
    __slots__ = ("digest", "present", "size")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    digest: str
    present: bool
    size: int
    def __init__(self, digest: _Optional[str] = ..., present: _Optional[bool] = ..., size: _Optional[int] = ...) -> None: ...

class BundleChunk(_message.Message):
    __slots__ = ("digest", "size", "offset", "data")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    digest: str
    size: int
    offset: int
    data: bytes
    def __init__(self, digest: _Optional[str] = ..., size: _Optional[int] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...
