#!/usr/bin/env python3
"""Write the example repository's sample data, deterministically, ending at --end.

The demo runs it with `--end now` on a copy so that values are fresh enough to pass the
views' ttl on online reads; the committed files end at a fixed time so tests are stable.
"""
import argparse
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

DRIVERS = [1001, 1002, 1003, 1004, 1005]
CUSTOMERS = [501, 502, 503]
HOURS = 72


def parse_end(text: str) -> datetime:
    if text == "now":
        return datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def driver_stats(rng: random.Random, end: datetime) -> pa.Table:
    rows = []
    for hour in range(HOURS, 0, -1):
        ts = end - timedelta(hours=hour)
        for driver in DRIVERS:
            rows.append({
                "driver_id": driver, "event_timestamp": ts, "created": ts + timedelta(minutes=5),
                "conv_rate": round(rng.random(), 4), "acc_rate": round(rng.uniform(0.5, 1), 4),
                "avg_daily_trips": rng.randint(0, 40), "vehicle_type": rng.choice(["sedan", "suv", "van"]),
            })
    schema = pa.schema([("driver_id", pa.int64()), ("event_timestamp", pa.timestamp("us", "UTC")),
                        ("created", pa.timestamp("us", "UTC")), ("conv_rate", pa.float32()),
                        ("acc_rate", pa.float32()), ("avg_daily_trips", pa.int64()), ("vehicle_type", pa.string())])
    return pa.Table.from_pylist(rows, schema=schema)


def customer_profile(rng: random.Random, end: datetime) -> pa.Table:
    areas = ["center", "airport", "harbour", "north", "campus"]
    rows = []
    for day in range(3, 0, -1):
        for customer in CUSTOMERS:
            rows.append({
                "customer_id": customer, "event_timestamp": (end - timedelta(days=day)).strftime("%Y-%m-%d %H:%M:%S"),
                "avg_spend": round(rng.uniform(8, 40), 2), "lifetime_trips": rng.randint(1, 300),
                "favourite_areas": "[" + ", ".join(rng.sample(areas, 2)) + "]",
            })
    return pa.Table.from_pylist(rows)


def driver_customer(rng: random.Random, end: datetime) -> pa.Table:
    rows = [{"driver_id": d, "customer_id": c, "event_timestamp": end - timedelta(hours=rng.randint(1, 48)),
             "trips": rng.randint(1, 12), "avg_rating": round(rng.uniform(3, 5), 1)}
            for d in DRIVERS for c in CUSTOMERS]
    schema = pa.schema([("driver_id", pa.int64()), ("customer_id", pa.int64()),
                        ("event_timestamp", pa.timestamp("us", "UTC")), ("trips", pa.int32()), ("avg_rating", pa.float32())])
    return pa.Table.from_pylist(rows, schema=schema)


def training_entities(end: datetime) -> pa.Table:
    rows = [{"driver_id": d, "customer_id": c, "event_timestamp": (end - timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%S"),
             "label": int((d + c + h) % 3 == 0)}
            for h in (1, 6, 30) for d in DRIVERS[:3] for c in CUSTOMERS[:2]]
    return pa.Table.from_pylist(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--end", default="2026-11-01T00:00:00", help="last hour of data (ISO 8601, UTC) or `now`")
    parser.add_argument("--out", default=str(Path(__file__).parent))
    args = parser.parse_args()
    end, out, rng = parse_end(args.end), Path(args.out), random.Random(7)
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(driver_stats(rng, end), out / "driver_stats.parquet")
    pcsv.write_csv(customer_profile(rng, end), out / "customer_profile.csv")
    pq.write_table(driver_customer(rng, end), out / "driver_customer.parquet")
    pcsv.write_csv(training_entities(end), out / "training_entities.csv")
    print(f"sample data ending {end.isoformat()} written to {out}")


if __name__ == "__main__":
    main()
