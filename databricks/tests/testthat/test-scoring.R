# Tests of churn/scoring.R, run by the run_testthat notebook.
#
# The notebook passes absolute paths in CHURN_CODE_DIR (the folder holding churn/),
# CHURN_MODEL_PATH and CHURN_DATA_DIR. testthat runs this file with the working directory set to
# its own folder, so the defaults below are relative to databricks/tests/testthat in the repo.

env_or <- function(name, default) {
  value <- Sys.getenv(name)
  if (nzchar(value)) value else default
}

code_dir <- env_or("CHURN_CODE_DIR", file.path("..", ".."))
model_path <- env_or("CHURN_MODEL_PATH", file.path("..", "..", "..", "models", "churn_model.rds"))
data_dir <- env_or("CHURN_DATA_DIR", file.path("..", "data"))

source(file.path(code_dir, "churn", "scoring.R"), local = TRUE)
customers <- read.csv(file.path(data_dir, "customers.csv"), stringsAsFactors = FALSE)

test_that("load_model reads a valid model and rejects anything else", {
  model <- load_model(model_path)
  expect_identical(model$features, c("tenure_months", "monthly_charges", "support_calls"))
  expect_error(load_model(file.path(tempdir(), "no-such-model.rds")), "model file not found")
  not_a_model <- tempfile(fileext = ".rds")
  saveRDS(list(a = 1), not_a_model)
  expect_error(load_model(not_a_model), "not a churn model")
})

test_that("score returns one probability per customer", {
  model <- load_model(model_path)
  prob <- score(model, customers)
  expect_length(prob, nrow(customers))
  expect_true(all(prob >= 0 & prob <= 1))
})

test_that("more support calls means a higher churn probability", {
  model <- load_model(model_path)
  base <- data.frame(tenure_months = 24, monthly_charges = 70, support_calls = 0:4)
  expect_true(all(diff(score(model, base)) > 0))
})

test_that("score validates its input", {
  model <- load_model(model_path)
  expect_error(score(model, customers[c("tenure_months", "monthly_charges")]), "support_calls")
  bad <- customers
  bad$monthly_charges[3] <- -5
  expect_error(score(model, bad), "negative")
})

test_that("classify applies the threshold and the model beats chance on the test data", {
  model <- load_model(model_path)
  expect_identical(classify(c(0.2, 0.5, 0.8), 0.5), c(0L, 1L, 1L))
  predicted <- classify(score(model, customers), model$threshold)
  expect_gte(mean(predicted == customers$churned), 0.75)
})
