# Databricks notebook source
# MAGIC %md
# MAGIC # Customer features with Spark
# MAGIC
# MAGIC Reads the customers CSV with Spark, derives the churn model's features (the same rules as
# MAGIC `churn/features.py`: tenure bucket, charges per support call) plus a rank of each customer's
# MAGIC charges within its tenure bucket, and writes them to a Delta table (overwritten).
# MAGIC Exits with `{"table": ..., "rows": n}`.
# MAGIC
# MAGIC | widget | default | meaning |
# MAGIC |---|---|---|
# MAGIC | `data_dir` | `tests/data` | folder of `customers.csv` |
# MAGIC | `table` | `main.churn.customer_features` | the Delta table written (three-level name) |
# MAGIC
# MAGIC Runs on Spark Connect compute (standard access, serverless, and the local workspace):
# MAGIC DataFrame and SQL APIs only, no `sc` or RDDs.

# COMMAND ----------

dbutils.widgets.text("data_dir", "tests/data")
dbutils.widgets.text("table", "main.churn.customer_features")

# COMMAND ----------

import json
import os

from pyspark.sql import Window
from pyspark.sql import functions as F

data_dir = os.path.abspath(dbutils.widgets.get("data_dir"))
table = dbutils.widgets.get("table")
catalog, schema, _ = table.split(".")

customers = (
    spark.read.option("header", True)
    .schema("customer_id STRING, tenure_months INT, monthly_charges DOUBLE, "
            "support_calls INT, churned INT")
    .csv(f"file:{data_dir}/customers.csv")
)

# COMMAND ----------

bucket = (
    F.when(F.col("tenure_months") < 12, "0-11")
    .when(F.col("tenure_months") < 24, "12-23")
    .when(F.col("tenure_months") < 48, "24-47")
    .otherwise("48+")
)
by_bucket = Window.partitionBy("tenure_bucket").orderBy(F.col("monthly_charges").desc())
features = (
    customers.where(F.col("customer_id").isNotNull())
    .withColumn("tenure_bucket", bucket)
    .withColumn(
        "charge_per_call", F.round(F.col("monthly_charges") / (F.col("support_calls") + 1), 2)
    )
    .withColumn("charges_rank_in_bucket", F.row_number().over(by_bucket))
    .select(
        "customer_id",
        "tenure_months",
        "monthly_charges",
        "support_calls",
        "tenure_bucket",
        "charge_per_call",
        "charges_rank_in_bucket",
        F.col("churned").cast("boolean").alias("churned"),
    )
)
display(features.groupBy("tenure_bucket").agg(F.count("*").alias("customers")))

# COMMAND ----------

spark.sql(f"CREATE SCHEMA IF NOT EXISTS {catalog}.{schema}")
features.write.format("delta").mode("overwrite").saveAsTable(table)
rows = spark.table(table).count()
print(f"wrote {rows} rows to {table}")
dbutils.notebook.exit(json.dumps({"table": table, "rows": rows}))
