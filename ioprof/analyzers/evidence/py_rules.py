"""Declarative rules: what a sampled Python stack is doing (read / decode / step / wait / idle).

py-spy sees Python frames only. A call into C (`fh.read()`, `os.read`, `numpy.fromfile`,
`time.sleep`) shows as the *calling* line, so two kinds of rule are needed, tried from the
innermost frame outwards, first match wins:
1. `FRAME_RULES`: a frame in a known library function (numpy's `.npy` reader, h5py's dataset
   reads, PIL's `Image.open`, pathlib, sockets ...) names what the stack does. Library frames
   without a rule are skipped (their caller decides), so numpy maths inside a user function stays
   decode and `np.load` stays read however deep numpy's own frames go.
2. `LINE_RULES`: for the innermost frame of the job's own code, the text of its source line
   (`raw = fh.read()`, `time.sleep(0.01)`); a line that calls a reading function is read.
A stack with job code and no read rule is CPU work in Python: decode (parsing, decoding,
augmenting, numpy maths), unless Keras' own frames lie below the job's innermost frame (the fit
loop, callbacks): that is the framework's overhead, "other". `time.sleep` is read when an
outer frame's function reads (a retry or throttle in a read path), else idle. Rules were
checked against py-spy 0.4.3 samples of numpy 2.4, h5py 3.14 and TF 2.21
(tests/fixtures/python_input/).
"""

from __future__ import annotations

import linecache
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from ioprof.stacks import Frame, is_job_file, is_job_line, job_frame  # noqa: F401 (re-exported)

Activity = Literal["read", "decode", "step", "wait", "idle", "other"]


@dataclass(frozen=True)
class FrameRule:
    """A library frame (`file` suffix/substring, function names; None = any) -> activity."""

    file: str
    functions: frozenset[str] | None
    activity: Activity
    why: str


def _fr(file: str, functions: str | None, activity: Activity, why: str) -> FrameRule:
    return FrameRule(file, frozenset(functions.split()) if functions else None, activity, why)


FRAME_RULES: tuple[FrameRule, ...] = (
    # --- the training step and tf.data waits (main thread) --------------------------------
    _fr("keras/src/backend/tensorflow/trainer.py",
        "TensorFlowTrainer.train_on_batch TensorFlowTrainer.test_on_batch "
        "TensorFlowTrainer.predict_on_batch", "step", "Keras runs one step"),
    _fr("polymorphic_function/polymorphic_function.py", "Function.__call__", "step",
        "a tf.function call (the job's train step)"),
    _fr("tensorflow/python/data/ops/iterator_ops.py", None, "wait",
        "waiting in tf.data's iterator (TF's profiler measures this wait)"),
    # --- reading ----------------------------------------------------------------------------
    _fr("numpy/lib/_npyio_impl.py", "load", "read", "np.load"),
    _fr("numpy/lib/npyio.py", "load", "read", "np.load"),
    _fr("numpy/lib/_format_impl.py", "read_array _read_bytes read_magic _read_array_header "
        "read_array_header_1_0 read_array_header_2_0", "read", "np.load's .npy reader"),
    _fr("numpy/lib/format.py", "read_array _read_bytes read_magic _read_array_header", "read",
        "np.load's .npy reader"),
    _fr("h5py/_hl/dataset.py", "Dataset.__getitem__ Dataset.read_direct __getitem__ "
        "read_direct", "read", "h5py dataset read"),
    _fr("h5py/_hl/files.py", None, "read", "h5py file open"),
    _fr("h5py/_hl/group.py", "Group.__getitem__ __getitem__", "read", "h5py object lookup"),
    _fr("PIL/Image.py", "open", "read", "PIL Image.open (reads the header)"),
    _fr("pathlib.py", "Path.read_bytes Path.read_text Path.open read_bytes read_text open",
        "read", "pathlib read"),
    _fr("socket.py", None, "read", "socket receive"),
    _fr("ssl.py", "SSLSocket.recv SSLSocket.recv_into SSLSocket.read recv recv_into read",
        "read", "TLS receive"),
    _fr("http/client.py", None, "read", "HTTP response read"),
    _fr("urllib/request.py", None, "read", "urlopen"),
    _fr("shutil.py", "copyfileobj copyfile copy copy2", "read", "file copy"),
    _fr("gzip.py", None, "read", "gzip file read"),
    _fr("zipfile.py", None, "read", "zip member read"),
    _fr("tarfile.py", None, "read", "tar member read"),
    _fr("tensorflow/python/lib/io/file_io.py", None, "read", "tf.io.gfile read"),
    _fr("json/__init__.py", "load", "read", "json.load (reads the file)"),
    # --- waiting, not working -----------------------------------------------------------------
    _fr("threading.py", "Condition.wait Event.wait Thread.join Semaphore.acquire", "wait",
        "waiting on another thread"),
    _fr("queue.py", "Queue.get get", "wait", "waiting on a queue"),
    _fr("multiprocessing/connection.py", None, "wait", "waiting on a worker process"),
)

# Training-framework code below the job's innermost frame is the framework's own Python
# (Keras' fit loop, callbacks, profiler Trace, checkpoints, summaries), not the job's input
# work: "other", as XProf has it. TF ops called eagerly from the job's code stay decode.
FRAMEWORK_OVERHEAD = ("/keras/", "/tf_keras/", "tensorflow/python/profiler/",
                      "tensorflow/python/training/", "tensorflow/python/checkpoint/",
                      "tensorflow/python/summary/", "tensorflow/python/distribute/")

# Source-line text of the innermost job frame: calls into C that read (py-spy shows the caller).
READ_LINE = re.compile(
    r"(?<![\w.])open\(|\.read(?:into|line|lines|_bytes|_text)?\(|\bos\.(?:read|pread|preadv)\("
    r"|\b(?:np|numpy)\.(?:load|fromfile|memmap)\(|\bh5py\.File\(|\bImage\.open\(|imread\("
    r"|urlopen\(|\.recv(?:_into|from)?\(|\bpickle\.load\(|\bjson\.load\(|\bfromfile\(")
SLEEP_LINE = re.compile(r"\bsleep\(")
# Function names that make a `time.sleep` below them part of a read path.
READ_FUNCTION = re.compile(r"read|load|fetch|download|open|recv|get_file", re.IGNORECASE)

# Entry frames of the Python that TF runs on its own threads for the input pipeline.
PY_FUNCTION_ENTRY = ("ops/script_ops.py",)
GENERATOR_ENTRY = ("from_generator_op.py", "dataset_ops.py")

LineReader = Callable[[str, int], str]


def read_source_line(file: str, line: int) -> str:
    """The job's source line as it is on disk now (empty when the file is gone, or when the
    name is garbage: py-spy's non-blocking sampling can read a frame mid-update, e.g. a file
    name with a NUL byte, which `os.stat` refuses)."""
    if not file or "\0" in file:
        return ""
    try:
        return linecache.getline(file, line)
    except (OSError, ValueError, UnicodeError):
        return ""



def _frame_rule(frame: Frame) -> FrameRule | None:
    for rule in FRAME_RULES:
        if rule.file in frame.file.replace("\\", "/") and (
                rule.functions is None or frame.function in rule.functions):
            return rule
    return None


def classify(stack: tuple[Frame, ...], read_line: LineReader = read_source_line
             ) -> tuple[Activity, str]:
    """What this stack is doing, and the rule that said so (for tests and the report)."""
    job_seen = framework_below = False
    for i in range(len(stack) - 1, -1, -1):
        frame = stack[i]
        if is_job_line(frame):
            if not job_seen and not framework_below:
                job_seen = True
                text = read_line(frame.file, frame.line)
                if SLEEP_LINE.search(text):
                    outer = stack[:i + 1]
                    if any(READ_FUNCTION.search(f.function) for f in outer):
                        return "read", "time.sleep under a read path"
                    return "idle", "time.sleep"
                if READ_LINE.search(text):
                    return "read", "the job's line calls a reading function"
            continue
        rule = _frame_rule(frame)
        if rule is not None:
            return rule.activity, rule.why
        if not job_seen and any(m in frame.file for m in FRAMEWORK_OVERHEAD):
            framework_below = True
    if framework_below:
        return "other", "the training framework's own Python (fit loop, callbacks)"
    if job_seen:
        return "decode", "CPU work in the job's Python (no read rule matched)"
    return "idle", "no job frame"


# Frames that make a child process one of the job's own input workers (a multiprocessing pool
# such as Keras' PyDataset workers, a ProcessPoolExecutor), as opposed to any other child (a
# FUSE server, a shell command): what such a worker does is the job's input work.
WORKER_FRAMES = (("multiprocessing/pool.py", "worker"),
                 ("multiprocessing/process.py", "BaseProcess._bootstrap"),
                 ("multiprocessing/process.py", "_bootstrap"),
                 ("concurrent/futures/process.py", "_process_worker"))


def is_input_worker(stacks: Iterable[tuple[Frame, ...]]) -> bool:
    """Whether a child process's sampled stacks show it is a multiprocessing worker."""
    return any(f.file.replace("\\", "/").endswith(file) and f.function == function
               for stack in stacks for f in stack for file, function in WORKER_FRAMES)


def thread_role(stack: tuple[Frame, ...]) -> Literal["py_function", "generator", "other"]:
    files = [f.file for f in stack]
    if any(e in f for f in files for e in PY_FUNCTION_ENTRY):
        return "py_function"
    if any(f.function.startswith("generator_py_func") or "from_generator" in f.file
           or ("dataset_ops.py" in f.file and "generator" in f.function) for f in stack):
        return "generator"
    return "other"
