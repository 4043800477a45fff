# A `_spill_in_chunks` tried and not kept (docs/benchmarks.md, "Entity rows from files on Spark"):
# the point-in-time result written by Spark as the join hands it out (no partitioning, no sort),
# then put in order on the driver by DuckDB's ORDER BY, which spills beyond its memory limit.
# Not a module: bench/spark_pit_ab.py executes it in featurectl.offline.spark's namespace
# (DataFrame, Iterator, pa, shutil, _spill_dir, _write, CHUNK_ROWS come from there).
def _spill_in_chunks(found: DataFrame, rows: int) -> Iterator[pa.Table]:  # noqa: F821
    import duckdb

    from featurectl.core.sql import literal

    where = _spill_dir()  # noqa: F821
    try:
        _write(found, where / "out")  # noqa: F821
    except BaseException:
        shutil.rmtree(where, ignore_errors=True)  # noqa: F821
        raise

    def chunks():
        conn = None
        try:
            files = sorted(str(p) for p in (where / "out").glob("*.parquet"))
            if not files:
                return
            conn = duckdb.connect(":memory:", config={"memory_limit": "256MB", "threads": 2,
                                                      "temp_directory": str(where / "sort")})
            listed = "[" + ", ".join(literal(f) for f in files) + "]"
            reader = conn.sql(f"SELECT * FROM read_parquet({listed}) ORDER BY __row").to_arrow_reader(CHUNK_ROWS)  # noqa: F821
            for batch in reader:
                yield pa.Table.from_batches([batch])  # noqa: F821
        finally:
            if conn is not None:
                conn.close()
            shutil.rmtree(where, ignore_errors=True)  # noqa: F821
    return chunks()
