"""Declarative mapping of TF profiler event names, stats and tf.data iterator kinds.

One place for every foreign name the analyzers rely on. Checked on TF 2.21 CPU captures
(Keras 3.15); rules match on suffixes and prefixes, never exact long names, so that tf.data's
rewrites (map+batch fusion, `FlatMap[i]::TFRecord` for file lists, `[i]` repetition indices)
keep working.
"""

from __future__ import annotations

import re

# --- step markers -----------------------------------------------------------------------------
STEP_MARKER_STAT = "step_num"  # Trace(name, step_num=n, _r=1): XProf's explicit step marker
KERAS_STEP_FUNCTIONS = ("multi_step_on_iterator", "one_step_on_iterator", "train_function",
                        "one_step_on_data")

# --- what the training thread blocks on -------------------------------------------------------
# XProf counts host events named IteratorGetNext* as "waiting for input".
INPUT_WAIT_EXACT = frozenset({
    "EagerLocalExecute: IteratorGetNext",
    "EagerLocalExecute: IteratorGetNextSync",
    "EagerLocalExecute: IteratorGetNextAsOptional",
    "IteratorGetNextOp::DoCompute",
    "IteratorGetNextAsOptionalOp::DoCompute",
})
INPUT_WAIT_PREFIXES = ("IteratorGetNext",)
# Host-to-device: XProf's InfeedEnqueue / MemcpyHToD; a CPU-only capture has none.
TRANSFER_PREFIXES = ("MemcpyHToD", "InfeedEnqueue", "MemcpyH2D", "Infeed", "TransferToDevice",
                     "CopyToDevice::", "SendTensor", "RecvTensor", "CollectiveReduce",
                     "NcclAllReduce", "AllReduce")
# Accelerator planes (`/device:GPU:0`, `/device:TPU:0`): host-to-device copies are transfer;
# other copies (D2H, D2D) are neither; kernels are compute.
DEVICE_PLANE_PREFIX = "/device:"
_H2D = ("MemcpyH2D", "MemcpyHtoD", "Memcpy HtoD", "memcpy_h2d", "InfeedEnqueue", "Infeed")
_OTHER_COPY = ("MemcpyD2H", "MemcpyDtoH", "MemcpyD2D", "MemcpyDtoD", "Memset", "Outfeed")


def is_h2d_copy(name: str) -> bool:
    return any(k in name for k in _H2D)


def is_other_copy(name: str) -> bool:
    return any(k in name for k in _OTHER_COPY)


# The step function's own execution on the training thread (model work).
COMPUTE_PREFIXES = ("EagerLocalExecute: __inference", "EagerLocalExecute: __forward",
                    "EagerLocalExecute: __backward")

# --- tf.data ----------------------------------------------------------------------------------
ITERATOR_PREFIX = "Iterator::"
ROOT_NAME = "Iterator::Root"
# Iterators that run their producers on background threads: their own GetNext time is the
# consumer waiting on a buffer, never work (XProf's tf.data bottleneck analysis list).
ASYNC_KINDS = ("Prefetch", "ParallelMap", "ParallelInterleave", "ParseExample", "MapAndBatch",
               "ParallelBatch", "DataService", "LegacyParallelInterleave", "ParallelFilter")
# Sources that read bytes from files (XProf's file-read suffixes, plus a few more readers).
READ_KINDS = ("TFRecord", "TextLine", "FixedLengthRecord", "SSTable", "RecordIO", "LMDB",
              "Lmdb", "SqlDataset", "Sql", "CSV", "ArrayRecord", "Snapshot", "Load")
# Iterators that hold a user function (a map/filter/interleave `fn`).
FUNCTION_KINDS = ("Map", "ParallelMap", "MapAndBatch", "FlatMap", "Interleave",
                  "ParallelInterleave", "Filter", "ParallelFilter", "Scan", "GroupByWindow",
                  "Generator", "FromGenerator")
# Source events that are file opens / reads though not iterators.
READ_EVENT_MARKERS = ("SetupStreamsLocked", "ReadFile", "ReadRecord", "RandomAccessFile")

FUNCTION_RUN = "FunctionRun"
CAPTURED_FUNCTION_RUN = "InstantiatedCapturedFunction::Run"  # Run, RunAsync, RunWithBorrowedArgs
# Threads that run the pipeline's producers (their GetNext calls are not a step's wait).
PIPELINE_THREAD_PREFIXES = ("tf_data_iterator_resource", "tf_data_private_threadpool")
EXECUTOR_PROCESS = "ExecutorState::Process"
PRODUCER_TYPE_STAT = "_pt"
PRODUCER_ID_STAT = "_p"
CONSUMER_TYPE_STAT = "_ct"
CONSUMER_ID_STAT = "_c"
TF_FUNCTION_LINK_TYPE = 2  # ContextType::kTfExecutor: FunctionRun -> ExecutorState::Process

# TF ops (kernels) that read bytes; every other op inside an input pipeline is decode.
# (py_function ops are decode unless py-spy shows them reading: see python.py.)
READ_OPS = frozenset({"ReadFile", "ReaderReadV2", "ReaderRead",
                      "TFRecordReaderV2", "FixedLengthRecordDatasetV2", "TFRecordDataset",
                      "TextLineDataset", "FixedLengthRecordDataset"})
# Ops that run Python inside a pipeline (py_function, numpy_function, from_generator).
PY_FUNC_OPS = frozenset({"EagerPyFunc", "PyFunc", "PyFuncStateless"})
# Python-side file reading seen by py-spy.
PY_READ_FUNCTIONS = frozenset({"read", "readinto", "load", "fromfile", "open", "readlines",
                               "read_bytes", "read_text", "imread", "urlopen", "recv"})

_INDEX = re.compile(r"\[\d+\]")


def normalize_iterator(long_name: str) -> str:
    """Drop repetition/file indices: `...ForeverRepeat[2]::FlatMap[0]::TFRecord` -> no `[i]`."""
    return _INDEX.sub("", long_name)


def iterator_kind(long_name: str) -> str:
    """The last component without its index: `...::FlatMap[0]::TFRecord` -> `TFRecord`."""
    return _INDEX.sub("", long_name.rsplit("::", 1)[-1])


def _kind_in(kind: str, kinds: tuple[str, ...]) -> bool:
    # "ParallelMapV2", "ParallelInterleaveV4", "PrefetchDataset" ... keep matching
    return any(kind == k or kind.startswith(k) for k in kinds)


def is_async_kind(kind: str) -> bool:
    return _kind_in(kind, ASYNC_KINDS)


def is_read_kind(kind: str) -> bool:
    return _kind_in(kind, READ_KINDS)


def has_function(kind: str) -> bool:
    return _kind_in(kind, FUNCTION_KINDS)


# Ops that exchange tensors with other workers or devices (MultiWorkerMirroredStrategy's
# gradient all-reduce, NCCL on GPUs): in a synchronous job a fast worker waits in them for the
# slowest one. Matched on the op *type* of kernel events ("sgd_1/CollectiveReduceV2:
# CollectiveReduceV2" on TF 2.21's `collective_ops/...` threads).
COLLECTIVE_OP_PREFIXES = ("Collective", "Nccl", "_Nccl", "AllReduce", "AllToAll", "AllGather",
                          "ReduceScatter")


def is_collective_op(kind: str) -> bool:
    return kind.startswith(COLLECTIVE_OP_PREFIXES)


def is_input_wait(name: str) -> bool:
    return name in INPUT_WAIT_EXACT or name.startswith(INPUT_WAIT_PREFIXES)


def is_transfer(name: str) -> bool:
    return name.startswith(TRANSFER_PREFIXES)


def op_type(event_name: str) -> str | None:
    """`scope/name:Type` kernel events -> `Type`; TraceMe names (`A::B`, no colon) -> None."""
    if ":" not in event_name or "::" in event_name or event_name.startswith("EagerLocalExecute"):
        return None
    name, _, kind = event_name.rpartition(":")
    if not name or not kind or " " in kind:
        return None
    return kind


def op_name(event_name: str) -> str:
    return event_name.rpartition(":")[0]


def is_read_op(kind: str) -> bool:
    return kind in READ_OPS
