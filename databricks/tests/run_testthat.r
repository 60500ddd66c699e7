# Databricks notebook source
# MAGIC %md
# MAGIC # Run the testthat tests
# MAGIC
# MAGIC Runs the testthat scripts in `tests_dir` against `churn/scoring.R` in `code_dir` and the
# MAGIC model at `model_path`, and writes JUnit XML to `<results_dir>/run_testthat.xml` (one
# MAGIC suite per test file). The notebook fails when a test fails, after the XML is written,
# MAGIC and otherwise exits with a JSON summary.
# MAGIC
# MAGIC | widget | default | meaning |
# MAGIC |---|---|---|
# MAGIC | `tests_dir` | `testthat` | folder of the testthat scripts |
# MAGIC | `data_dir` | `data` | folder of the test data (`CHURN_DATA_DIR`) |
# MAGIC | `model_path` | `../../models/churn_model.rds` | the serialized model (`CHURN_MODEL_PATH`) |
# MAGIC | `results_dir` | `results` | where the JUnit XML goes (created if missing) |
# MAGIC | `code_dir` | `..` | folder that holds `churn/scoring.R` (`CHURN_CODE_DIR`) |
# MAGIC
# MAGIC Relative paths are relative to this notebook's folder; a build passes absolute ones.

# COMMAND ----------

dbutils.widgets.text("tests_dir", "testthat")
dbutils.widgets.text("data_dir", "data")
dbutils.widgets.text("model_path", "../../models/churn_model.rds")
dbutils.widgets.text("results_dir", "results")
dbutils.widgets.text("code_dir", "..")

# COMMAND ----------

library(testthat)

# testthat runs each test file from the file's own folder, so every path handed to the tests
# must be absolute. (normalizePath() leaves a path that does not exist yet relative.)
absolute_path <- function(path) {
  path <- path.expand(path)
  if (!grepl("^(/|\\\\|[A-Za-z]:)", path)) path <- file.path(getwd(), path)
  if (file.exists(path)) normalizePath(path) else path
}

tests_dir <- absolute_path(dbutils.widgets.get("tests_dir"))
data_dir <- absolute_path(dbutils.widgets.get("data_dir"))
model_path <- absolute_path(dbutils.widgets.get("model_path"))
results_dir <- absolute_path(dbutils.widgets.get("results_dir"))
code_dir <- absolute_path(dbutils.widgets.get("code_dir"))
junit_path <- file.path(results_dir, "run_testthat.xml")

dir.create(results_dir, recursive = TRUE, showWarnings = FALSE)
Sys.setenv(
  CHURN_DATA_DIR = data_dir,
  CHURN_MODEL_PATH = model_path,
  CHURN_CODE_DIR = code_dir
)

cat(sprintf(
  "tests: %s\ndata: %s\nmodel: %s\ncode: %s\njunit: %s\n",
  tests_dir, data_dir, model_path, code_dir, junit_path
))

# COMMAND ----------

results <- testthat::test_dir(
  tests_dir,
  reporter = testthat::JunitReporter$new(file = junit_path),
  stop_on_failure = FALSE
)
summary_table <- as.data.frame(results)
print(summary_table[c("file", "test", "nb", "failed", "skipped", "error")], row.names = FALSE)

# COMMAND ----------

counts <- c(tests = 0L, failures = 0L, errors = 0L, skipped = 0L)
if (file.exists(junit_path)) {
  suites <- xml2::xml_find_all(xml2::read_xml(junit_path), "//testsuite")
  for (key in names(counts)) {
    counts[[key]] <- sum(as.integer(xml2::xml_attr(suites, key)), na.rm = TRUE)
  }
}

if (!file.exists(junit_path) || counts[["failures"]] > 0L || counts[["errors"]] > 0L ||
  counts[["tests"]] == 0L) {
  stop(sprintf(
    "testthat failed: %d failed, %d errors, %d tests; see %s",
    counts[["failures"]], counts[["errors"]], counts[["tests"]], junit_path
  ))
}

dbutils.notebook.exit(as.character(jsonlite::toJSON(as.list(counts), auto_unbox = TRUE)))
