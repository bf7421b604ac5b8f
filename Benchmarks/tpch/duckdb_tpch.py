#!/usr/bin/env python3
"""Runs the 22 TPC-H queries on DuckDB (or Polars' SQL) over generated .tbl files.

  duckdb_tpch.py reference DATA_DIR OUT_DIR      write each query's answer as CSV (the reference answers)
  duckdb_tpch.py time DATA_DIR THREADS [REPS]    print one JSON line per query: DuckDB's best time, in memory
  duckdb_tpch.py ingest FILE THREADS             print lineitem CSV ingest MB/s for DuckDB and Polars
  duckdb_tpch.py operators DATA_DIR THREADS REPS print DuckDB's best time for each query of a JSON list read from stdin,
                                                 materialized as a temporary table (as Skein materializes its result)
"""
import json, os, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
MONEY = "DECIMAL(15,2)"
SCHEMA = {
    "region": [("r_regionkey", "BIGINT"), ("r_name", "VARCHAR"), ("r_comment", "VARCHAR")],
    "nation": [("n_nationkey", "BIGINT"), ("n_name", "VARCHAR"), ("n_regionkey", "BIGINT"), ("n_comment", "VARCHAR")],
    "supplier": [("s_suppkey", "BIGINT"), ("s_name", "VARCHAR"), ("s_address", "VARCHAR"), ("s_nationkey", "BIGINT"),
                 ("s_phone", "VARCHAR"), ("s_acctbal", MONEY), ("s_comment", "VARCHAR")],
    "customer": [("c_custkey", "BIGINT"), ("c_name", "VARCHAR"), ("c_address", "VARCHAR"), ("c_nationkey", "BIGINT"),
                 ("c_phone", "VARCHAR"), ("c_acctbal", MONEY), ("c_mktsegment", "VARCHAR"), ("c_comment", "VARCHAR")],
    "part": [("p_partkey", "BIGINT"), ("p_name", "VARCHAR"), ("p_mfgr", "VARCHAR"), ("p_brand", "VARCHAR"), ("p_type", "VARCHAR"),
             ("p_size", "BIGINT"), ("p_container", "VARCHAR"), ("p_retailprice", MONEY), ("p_comment", "VARCHAR")],
    "partsupp": [("ps_partkey", "BIGINT"), ("ps_suppkey", "BIGINT"), ("ps_availqty", "BIGINT"), ("ps_supplycost", MONEY),
                 ("ps_comment", "VARCHAR")],
    "orders": [("o_orderkey", "BIGINT"), ("o_custkey", "BIGINT"), ("o_orderstatus", "VARCHAR"), ("o_totalprice", MONEY),
               ("o_orderdate", "DATE"), ("o_orderpriority", "VARCHAR"), ("o_clerk", "VARCHAR"), ("o_shippriority", "BIGINT"),
               ("o_comment", "VARCHAR")],
    "lineitem": [("l_orderkey", "BIGINT"), ("l_partkey", "BIGINT"), ("l_suppkey", "BIGINT"), ("l_linenumber", "BIGINT"),
                 ("l_quantity", MONEY), ("l_extendedprice", MONEY), ("l_discount", MONEY), ("l_tax", MONEY),
                 ("l_returnflag", "VARCHAR"), ("l_linestatus", "VARCHAR"), ("l_shipdate", "DATE"), ("l_commitdate", "DATE"),
                 ("l_receiptdate", "DATE"), ("l_shipinstruct", "VARCHAR"), ("l_shipmode", "VARCHAR"), ("l_comment", "VARCHAR")],
}


def queries():
    """The 22 queries, read from the Swift source that Skein runs (one copy of the text)."""
    import re
    with open(os.path.join(HERE, "..", "..", "Sources", "SkeinData", "TPCH", "TPCHQueries.swift")) as f:
        text = f.read()
    found = re.findall(r'#"""\n(.*?)\n\s*"""#', text, re.S)
    assert len(found) == 22, "expected 22 queries in TPCHQueries.swift, found %d" % len(found)
    return [re.sub(r"(?m)^        ", "", q) for q in found]


QUERIES = queries()


def query(n):
    return QUERIES[n - 1]


def load(con, data):
    for t, cols in SCHEMA.items():
        spec = ", ".join("'%s': '%s'" % c for c in cols + [("extra", "VARCHAR")])
        names = ", ".join(c for c, _ in cols)
        con.execute("CREATE TABLE %s AS SELECT %s FROM read_csv('%s/%s.tbl', delim='|', header=false, quote='', columns={%s})"
                    % (t, names, data, t, spec))


def main():
    import duckdb
    mode = sys.argv[1]
    if mode == "reference":
        data, out = sys.argv[2], sys.argv[3]
        os.makedirs(out, exist_ok=True)
        con = duckdb.connect()
        load(con, data)
        for n in range(1, 23):
            con.execute("COPY (%s) TO '%s/q%02d.csv' (HEADER, DELIMITER '|')" % (query(n).rstrip().rstrip(";"), out, n))
        print("wrote 22 answers to", out)
    elif mode == "time":
        data, threads = sys.argv[2], int(sys.argv[3])
        reps = int(sys.argv[4]) if len(sys.argv) > 4 else 3
        con = duckdb.connect()
        con.execute("SET threads=%d" % threads)
        load(con, data)
        for n in range(1, 23):
            best = None
            for _ in range(reps):
                t = time.perf_counter()
                con.execute(query(n)).fetchall()
                dt = time.perf_counter() - t
                best = dt if best is None else min(best, dt)
            print(json.dumps({"engine": "duckdb", "query": n, "threads": threads, "seconds": best}), flush=True)
        try:
            import polars as pl
            os.environ["POLARS_MAX_THREADS"] = str(threads)
            ctx = pl.SQLContext()
            kinds = {"BIGINT": pl.Int64, "VARCHAR": pl.Utf8, "DATE": pl.Date, MONEY: pl.Decimal(15, 2)}
            for t, cols in SCHEMA.items():
                df = pl.read_csv("%s/%s.tbl" % (data, t), separator="|", has_header=False, quote_char=None,
                                 new_columns=[c for c, _ in cols] + ["extra"], infer_schema=False)
                df = df.select([pl.col(c).str.to_date("%Y-%m-%d") if k == "DATE" else pl.col(c).cast(kinds[k]) for c, k in cols])
                ctx.register(t, df)
            for n in range(1, 23):
                best = None
                try:
                    for _ in range(reps):
                        t = time.perf_counter()
                        ctx.execute(query(n), eager=True)
                        dt = time.perf_counter() - t
                        best = dt if best is None else min(best, dt)
                except Exception as e:  # Polars' SQL does not cover every TPC-H query
                    best = None
                print(json.dumps({"engine": "polars", "query": n, "threads": threads, "seconds": best}), flush=True)
        except ImportError:
            pass
    elif mode == "operators":
        data, threads, reps = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        texts = json.load(sys.stdin)
        con = duckdb.connect()
        con.execute("SET threads=%d" % threads)
        load(con, data)
        for i, q in enumerate(texts):
            best = None
            for _ in range(reps):
                t = time.perf_counter()
                con.execute("CREATE OR REPLACE TEMP TABLE bench_out AS " + q)
                dt = time.perf_counter() - t
                best = dt if best is None else min(best, dt)
            print(json.dumps({"engine": "duckdb", "case": i, "threads": threads, "seconds": best}), flush=True)
    elif mode == "ingest":
        path, threads = sys.argv[2], int(sys.argv[3])
        size = os.path.getsize(path)
        cols = SCHEMA["lineitem"]
        con = duckdb.connect()
        con.execute("SET threads=%d" % threads)
        spec = ", ".join("'%s': '%s'" % c for c in cols + [("extra", "VARCHAR")])
        best = None
        for _ in range(2):
            con.execute("DROP TABLE IF EXISTS l")
            t = time.perf_counter()
            con.execute("CREATE TABLE l AS SELECT * FROM read_csv('%s', delim='|', header=false, quote='', columns={%s})" % (path, spec))
            dt = time.perf_counter() - t
            best = dt if best is None else min(best, dt)
        print(json.dumps({"engine": "duckdb", "threads": threads, "mb_per_s": size / best / 1e6}), flush=True)
        try:
            os.environ["POLARS_MAX_THREADS"] = str(threads)
            import polars as pl
            best = None
            for _ in range(2):
                t = time.perf_counter()
                pl.read_csv(path, separator="|", has_header=False, quote_char=None)
                dt = time.perf_counter() - t
                best = dt if best is None else min(best, dt)
            print(json.dumps({"engine": "polars", "threads": threads, "mb_per_s": size / best / 1e6}), flush=True)
        except ImportError:
            pass


if __name__ == "__main__":
    main()
