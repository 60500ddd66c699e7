# Databricks notebook source
# MAGIC %md
# MAGIC # Score customers for churn
# MAGIC
# MAGIC Loads the churn model, scores every customer in `input_path` and, when `output_path` is
# MAGIC set, writes the scores there as CSV. Exits with a JSON summary.
# MAGIC
# MAGIC | widget | default | meaning |
# MAGIC |---|---|---|
# MAGIC | `model_path` | `../models/churn_model.rds` | the serialized model |
# MAGIC | `input_path` | `tests/data/customers.csv` | customers CSV (`customer_id` and the model features) |
# MAGIC | `output_path` | (empty: do not write) | where to write the scores CSV |
# MAGIC | `code_dir` | `.` | folder that holds `churn/scoring.R` |

# COMMAND ----------

dbutils.widgets.text("model_path", "../models/churn_model.rds")
dbutils.widgets.text("input_path", "tests/data/customers.csv")
dbutils.widgets.text("output_path", "")
dbutils.widgets.text("code_dir", ".")

# COMMAND ----------

source(file.path(dbutils.widgets.get("code_dir"), "churn", "scoring.R"))

model <- load_model(dbutils.widgets.get("model_path"))
customers <- read.csv(dbutils.widgets.get("input_path"), stringsAsFactors = FALSE)

scores <- data.frame(
  customer_id = customers$customer_id,
  churn_probability = round(score(model, customers), 4)
)
scores$predicted_churn <- classify(scores$churn_probability, model$threshold)
head(scores[order(-scores$churn_probability), ], 10)

# COMMAND ----------

output_path <- dbutils.widgets.get("output_path")
if (nzchar(output_path)) {
  dir.create(dirname(output_path), recursive = TRUE, showWarnings = FALSE)
  write.csv(scores, output_path, row.names = FALSE)
}

summary <- list(
  model = paste(model$name, model$version),
  rows = nrow(scores),
  predicted_churn = sum(scores$predicted_churn),
  mean_probability = round(mean(scores$churn_probability), 4)
)
if ("churned" %in% names(customers)) {
  summary$accuracy <- round(mean(scores$predicted_churn == customers$churned), 4)
}

dbutils.notebook.exit(as.character(jsonlite::toJSON(summary, auto_unbox = TRUE)))
