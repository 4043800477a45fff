"""Customer features, defined in Python: the same objects as YAML, collected from module scope."""
from featurectl import Entity, Feature, FeatureView, FileSource, QuerySource

# Entities are defined in entities.yaml; Python files may reference them by name.
customer_profile_source = FileSource(
    name="customer_profile_daily",
    path="data/customer_profile.csv",
    timestamp_field="event_timestamp",
    description="Daily customer profile snapshot",
)

customer_profile = FeatureView(
    name="customer_profile",
    version="1.0.0",
    entities=["customer"],
    source=customer_profile_source,
    ttl="7d",
    owner="growth-ml@example.com",
    description="Customer spending profile",
    features=[
        Feature(name="avg_spend", dtype="float64", description="Average spend per trip"),
        Feature(name="lifetime_trips", dtype="int64", nullable=False),
        Feature(name="favourite_areas", dtype="list<string>"),
    ],
)

# A view keyed by two entities (a composite key), over a DuckDB query.
driver_customer_trips = QuerySource(
    name="driver_customer_trips",
    query="SELECT driver_id, customer_id, event_timestamp, trips, avg_rating "
          "FROM read_parquet('data/driver_customer.parquet')",
    timestamp_field="event_timestamp",
)

driver_customer_affinity = FeatureView(
    name="driver_customer_affinity",
    version="1.0.0",
    entities=["driver", "customer"],
    source=driver_customer_trips,
    ttl="30d",
    owner="rides-ml@example.com",
    features=[
        Feature(name="trips", dtype="int32", description="Trips this customer took with this driver"),
        Feature(name="avg_rating", dtype="float32", constraints={"min": 1, "max": 5}),
    ],
)
