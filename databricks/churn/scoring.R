# Churn scoring: load the serialized model and score customers with it.
#
# Base R only, so it runs on any cluster. Source it from a notebook or a test:
#   source(file.path(code_dir, "churn", "scoring.R"))
#
#   model <- load_model("models/churn_model.rds")
#   prob  <- score(model, customers)          # churn probabilities in [0, 1]
#   label <- classify(prob, model$threshold)  # 0/1

MODEL_FIELDS <- c("features", "coefficients", "threshold")

# Reads a model saved by models/train_model.R and checks its structure.
load_model <- function(path) {
  if (!is.character(path) || length(path) != 1L || is.na(path) || !nzchar(path)) {
    stop("model path must be a single non-empty string")
  }
  if (!file.exists(path)) {
    stop(sprintf("model file not found: %s", path))
  }
  model <- readRDS(path)
  validate_model(model)
  model
}

validate_model <- function(model) {
  if (!is.list(model) || !all(MODEL_FIELDS %in% names(model))) {
    stop(sprintf("not a churn model: needs a list with %s", paste(MODEL_FIELDS, collapse = ", ")))
  }
  expected <- c("(Intercept)", model$features)
  if (!is.numeric(model$coefficients) || !identical(names(model$coefficients), expected)) {
    stop("model coefficients must be a numeric vector named (Intercept) and the features")
  }
  if (!is.numeric(model$threshold) || length(model$threshold) != 1L ||
    is.na(model$threshold) || model$threshold <= 0 || model$threshold >= 1) {
    stop("model threshold must be a single number strictly between 0 and 1")
  }
  invisible(model)
}

# Checks that df has every model feature as a finite, non-negative numeric column.
validate_customers <- function(model, df) {
  if (!is.data.frame(df)) {
    stop("customers must be a data.frame")
  }
  missing <- setdiff(model$features, names(df))
  if (length(missing) > 0L) {
    stop(sprintf("missing feature column(s): %s", paste(missing, collapse = ", ")))
  }
  for (feature in model$features) {
    values <- df[[feature]]
    if (!is.numeric(values)) {
      stop(sprintf("feature %s must be numeric", feature))
    }
    if (anyNA(values) || any(!is.finite(values))) {
      stop(sprintf("feature %s has missing or infinite values", feature))
    }
    if (any(values < 0)) {
      stop(sprintf("feature %s has negative values", feature))
    }
  }
  invisible(df)
}

# Churn probability for every row of df (a numeric vector, one value per row).
score <- function(model, df) {
  validate_model(model)
  validate_customers(model, df)
  x <- cbind(1, as.matrix(df[model$features]))
  as.vector(stats::plogis(x %*% model$coefficients))
}

# 1 where the probability reaches the threshold, else 0 (an integer vector).
classify <- function(probabilities, threshold = 0.5) {
  if (!is.numeric(probabilities) || anyNA(probabilities) ||
    any(probabilities < 0 | probabilities > 1)) {
    stop("probabilities must be numbers in [0, 1]")
  }
  if (!is.numeric(threshold) || length(threshold) != 1L || is.na(threshold) ||
    threshold <= 0 || threshold >= 1) {
    stop("threshold must be a single number strictly between 0 and 1")
  }
  as.integer(probabilities >= threshold)
}
