"""Independent jobs on a dask cluster (a LocalCluster or a running scheduler), or one
after another in this process, with every finished result kept in a JSON-lines file so
that an interrupted run resumes where it stopped.

    from lowbit.cluster import Sweep
    with Sweep("runs.jsonl", n_workers=2) as sweep:
        results = sweep.map(train_one, jobs, retries=1, keep_going=True)

The capacity sweeps (`lowbit.capacity`) and `lowbit study --workers / --scheduler` run on
it. It imports nothing above itself, and dask only when a job leaves this process.
"""
from .store import ResultStore, job_key
from .sweep import JobFailure, Sweep

__all__ = ["Sweep", "ResultStore", "JobFailure", "job_key"]
