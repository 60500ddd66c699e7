# Spark for R notebooks in the local workspace: there is none, and it says so in one line.
#
# Sourced by the executor after dbutils.R. The local workspace's Spark engine speaks
# Spark Connect to Python sessions only: SparkR has no Spark Connect client (and is deprecated
# since DBR 16) and sparklyr's needs a JVM-side or pysparklyr setup that is not here. So
# library(), require() and requireNamespace() of SparkR or sparklyr stop with one clear line
# instead of a missing-package error; every other package loads as usual. Base R only.

local({
  no_spark <- c("SparkR", "sparklyr")
  refuse <- function(name) {
    if (length(name) == 1 && name %in% no_spark) {
      stop(sprintf(paste0(
        "%s is not available: the local workspace has no Spark for R notebooks ",
        "(Spark runs for Python notebooks only; see docs/spark.md)"
      ), name), call. = FALSE)
    }
  }
  package_name <- function(call) {
    arg <- call$package
    if (is.character(arg)) arg else deparse(arg)
  }
  wrap <- function(base_fun, base_name) {
    force(base_fun)
    function(package, ...) {
      call <- match.call(expand.dots = TRUE)
      character_only <- isTRUE(list(...)$character.only) || base_name == "requireNamespace"
      name <- if (missing(package)) NULL else if (character_only) package
        else package_name(call)
      refuse(name)
      call[[1]] <- base_fun
      eval(call, parent.frame())
    }
  }
  assign("library", wrap(base::library, "library"), envir = globalenv())
  assign("require", wrap(base::require, "require"), envir = globalenv())
  assign("requireNamespace", wrap(base::requireNamespace, "requireNamespace"), envir = globalenv())
})
