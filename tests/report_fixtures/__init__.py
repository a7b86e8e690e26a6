"""Hand-built analysis objects for renderer unit tests (XSS, anonymize, scale).

The content tests render analyses of real traced runs; these exist for what real runs cannot
easily produce: hostile strings everywhere, a 50,000-step run, a run with nothing in it.
"""

from __future__ import annotations

import dataclasses

from ioprof.analyzers.model import (
    Analysis,
    Bottleneck,
    Breakdown,
    CaptureWindow,
    Culprit,
    Evidence,
    HostSeries,
    HostSummary,
    OpStat,
    PythonHotspot,
    Recommendation,
    RunFacts,
    SourceRef,
    Step,
    StepStats,
    TfDataIterator,
    Verdict,
)

T0 = 1_795_000_000_000_000_000
MS = 1_000_000


def steps(n: int, start_ns: int = T0 + 2_000 * MS) -> tuple[Step, ...]:
    out = []
    t = start_ns
    for i in range(n):
        read, decode, compute, other = 2 * MS, (30 + i % 7) * MS, 9 * MS, 1 * MS
        dur = read + decode + compute + other
        out.append(Step(step=i, start_ns=t, dur_ns=dur, read_ns=read, decode_ns=decode,
                        compute_ns=compute, other_ns=other, input_wait_ns=read + decode))
        t += dur
    return tuple(out)


def decode_bound(n_steps: int = 40, *, name: str = "ioprof_2_map",
                 command: tuple[str, ...] = ("python", "/home/alice/proj/train.py", "--epochs=1"),
                 file: str = "/home/alice/proj/train.py", hostname: str = "gpu-box-17",
                 host_points: int = 60) -> Analysis:
    per_step = steps(n_steps)
    total = sum(s.dur_ns for s in per_step)
    src = SourceRef(file, 24, "<module>")
    fn = SourceRef(file, 10, "parse")
    decode_op = OpStat(name="DecodeJpeg", op_type="DecodeJpeg", where="input", category="decode",
                       count=n_steps * 32, total_ns=total // 2, self_ns=total // 2, share=0.71,
                       iterator_id=3)
    pipeline = (
        TfDataIterator(id=1, parent_id=None, long_name="Iterator::Root", kind="Root",
                       category="decode", is_async=False, children=(2,)),
        TfDataIterator(id=2, parent_id=1, long_name="Iterator::Root::Prefetch", kind="Prefetch",
                       category="decode", is_async=True, children=(3,), self_ns=3 * MS,
                       parallelism=None, buffer_size=2),
        TfDataIterator(id=3, parent_id=2, long_name="Iterator::Root::Prefetch::Map", kind="Map",
                       category="decode", is_async=False, user_name=name, children=(4,),
                       self_ns=total * 7 // 10, blocking_ns=total * 7 // 10, parallelism=1,
                       ops=(decode_op,), source=src, fn_source=fn),
        TfDataIterator(id=4, parent_id=3, long_name="Iterator::Root::Prefetch::Map::TFRecord",
                       kind="TFRecord", category="read", is_async=False,
                       self_ns=total // 20, blocking_ns=total // 20,
                       source=SourceRef(file, 22, "<module>")),
    )
    t = tuple(T0 + i * 100 * MS for i in range(host_points))
    series = HostSeries(t_ns=t, disk_read_mb_s=tuple(20.0 + i % 5 for i in range(len(t))),
                        net_recv_mb_s=tuple(0.0 for _ in t),
                        page_cache_share=tuple(None if i % 9 == 0 else 0.9 for i in range(len(t))),
                        job_cpu_percent=tuple(100.0 for _ in t),
                        system_cpu_percent=tuple(55.0 for _ in t),
                        iowait_percent=tuple(1.0 for _ in t))
    return Analysis(
        run=RunFacts(path="/home/alice/runs/r1", command=command, cwd="/home/alice/proj",
                     pid=4242, start_ns=T0, end_ns=T0 + 10_000 * MS, exit_code=0,
                     hostname=hostname, cpu_count=8, tf_version="2.21.0",
                     ioprof_version="0.1.0", steps_seen=400,
                     collectors={"host": "ok", "pyspy": "ok", "tf": "ok"}),
        steps=StepStats(per_step=per_step, source="markers", marker="train",
                        median_ns=45 * MS, p10_ns=43 * MS, p90_ns=48 * MS),
        breakdown=Breakdown(read=0.05, decode=0.73, transfer=0.0, compute=0.2, other=0.02),
        input_bound_percent=78.0,
        verdict=Verdict(level="HIGHLY", input_bound_percent=78.0,
                        xprof_sentence="Your program is HIGHLY input-bound because 78.0% of the "
                                       "total step time sampled is waiting for input.",
                        diagnosis="The sequential map's DecodeJpeg is the bottleneck."),
        bottleneck=Bottleneck(
            category="decode", summary="decode dominates input wait",
            culprits=(Culprit(kind="tf.data", name=name, share=0.9, source=src,
                              detail="Map, parallelism 1", iterator_id=3, fn_source=fn),
                      Culprit(kind="tf.op", name="DecodeJpeg", share=0.71, iterator_id=3),
                      Culprit(kind="python", name="parse", share=0.1, source=fn)),
            evidence=(Evidence(name="disk_read_mb_s", value=21.0, unit="MB/s",
                               text="Disk reads averaged 21 MB/s, far below the device's rate."),)),
        recommendations=(Recommendation(
            title="Parallelize the map", detail="Pass num_parallel_calls=tf.data.AUTOTUNE.",
            source=src, kind="parallelize_map", culprit=name),),
        pipeline=pipeline,
        input_ops=(decode_op,),
        model_ops=(OpStat(name="sequential/dense/MatMul", op_type="MatMul", where="model",
                          category="compute", count=n_steps, total_ns=5 * MS, self_ns=5 * MS,
                          share=0.6),),
        python_hotspots=(PythonHotspot(source=fn, samples=120, share=0.4),),
        host=HostSummary(available=True, over="captures", cpu_count=8, disk_read_mb_s=21.0,
                         disk_read_mb_s_peak=24.0, page_cache_share=0.9, iowait_percent=1.0,
                         job_cpu_percent=100.0, series=series),
        captures=(CaptureWindow(index=0, path="tf/logdir/plugins/profile/x/gpu-box-17.xplane.pb",
                                start_ns=per_step[0].start_ns,
                                end_ns=per_step[-1].end_ns, events=1000,
                                steps=n_steps),),
        warnings=("py-spy: degraded (example warning)",),
    )


def with_run(analysis: Analysis, **changes: object) -> Analysis:
    return dataclasses.replace(analysis, run=dataclasses.replace(analysis.run, **changes))
